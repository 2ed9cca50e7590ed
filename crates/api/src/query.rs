//! Query strings, read into typed structs. A route's query struct derives serde's `Deserialize`,
//! which parses the request, and utoipa's `IntoParams`, which describes it in the OpenAPI
//! document: the two cannot drift apart. [`Query`] reads any such struct; [`ListQuery`] reads a
//! list's page (`limit`, `iterator`, `order`) together with the list's own parameters.
//!
//! The syntax every route accepts:
//! - a parameter given more than once counts with its last value, except a list, which takes
//!   every value: repeated (`event_types=a&event_types=b`, or `event_types[]=a`) or
//!   comma-separated (`event_types=a,b`), or both;
//! - an empty value (`channel=`) is the same as no value;
//! - booleans are `true`, `True`, `1`, `false`, `False` or `0`; timestamps are RFC 3339 (a
//!   time without an offset is UTC);
//! - unknown parameters are ignored.
//!
//! A value that does not parse answers 422 in the API's validation shape, located at
//! `["query", name]`.

use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::{IntoParams, ToSchema};
use webhookd_store::{Cursor, Order, PageRequest};

use crate::error::ApiError;

/// The most items a list returns at once.
pub const MAX_LIMIT: usize = 250;
/// The items a list returns when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;

/// A query string read into `T`.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Reads `T` from a query string (without its `?`).
pub fn parse<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    T::deserialize(QueryDeserializer::new(query)).map_err(|error| {
        let mut loc = vec!["query"];
        loc.extend(error.name.as_deref());
        ApiError::invalid(&loc, error.msg)
    })
}

/// A list's query: its page and its own parameters `P`, read from the same query string. It
/// describes both in the document, the page first.
#[derive(Debug, Clone)]
pub struct ListQuery<P = NoParams> {
    pub page: PageQuery,
    pub params: P,
}

impl<S: Send + Sync, P: DeserializeOwned> FromRequestParts<S> for ListQuery<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(Self {
            page: parse(query)?,
            params: parse(query)?,
        })
    }
}

impl<P: IntoParams> IntoParams for ListQuery<P> {
    fn into_params(parameter_in: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let mut params = PageQuery::into_params(&parameter_in);
        params.extend(P::into_params(&parameter_in));
        params
    }
}

/// The parameters of a list that takes nothing but its page.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoParams {}

/// The page of a list: how many items, from where, in which order.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items to return at most: 1 to 250, 50 by default.
    #[serde(default = "default_limit", deserialize_with = "limit")]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 250)]
    pub limit: usize,
    /// Where to start: the `iterator` (or `prevIterator`) of a previous page.
    #[serde(default)]
    pub iterator: Option<String>,
    /// The order of the items; each list has its natural one.
    #[serde(default)]
    #[param(inline)]
    pub order: Option<ListOrder>,
}

impl PageQuery {
    /// The page to read, in the list's natural order unless `order` says otherwise. An
    /// `iterator` that starts with `-` reads backwards from the item after it.
    pub fn page(&self, natural: Order) -> PageRequest {
        let cursor = self
            .iterator
            .as_deref()
            .map(|text| match text.strip_prefix('-') {
                Some(key) => Cursor {
                    key: key.to_owned(),
                    backward: true,
                },
                None => Cursor {
                    key: text.to_owned(),
                    backward: false,
                },
            });
        PageRequest {
            limit: self.limit,
            cursor,
            order: match self.order {
                None => natural,
                Some(ListOrder::Ascending) => Order::Ascending,
                Some(ListOrder::Descending) => Order::Descending,
            },
        }
    }
}

/// The order of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListOrder {
    Ascending,
    Descending,
}

fn default_limit() -> usize {
    DEFAULT_LIMIT
}

/// `limit`: 1 to [`MAX_LIMIT`]. For `#[serde(deserialize_with)]`.
pub fn limit<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let limit = i64::deserialize(deserializer)?;
    usize::try_from(limit)
        .ok()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
        .ok_or_else(|| de::Error::custom(format!("must be between 1 and {MAX_LIMIT}")))
}

/// `with_content` and the like: true unless given as false. For `#[serde(default)]`.
pub fn yes() -> bool {
    true
}

/// An error of one parameter (`name`), or of the query as a whole.
#[derive(Debug)]
pub struct QueryError {
    name: Option<String>,
    msg: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(formatter, "{name}: {}", self.msg),
            None => formatter.write_str(&self.msg),
        }
    }
}

impl std::error::Error for QueryError {}

impl de::Error for QueryError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            name: None,
            msg: msg.to_string(),
        }
    }
}

/// The parameters of a query string by name, in the order they first appear, each with its
/// non-empty values in order.
struct QueryDeserializer {
    params: Vec<(String, Vec<String>)>,
}

impl QueryDeserializer {
    fn new(query: &str) -> Self {
        let mut params: Vec<(String, Vec<String>)> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if value.is_empty() {
                continue;
            }
            let name = name.strip_suffix("[]").unwrap_or(&name);
            match params.iter_mut().find(|(known, _)| known == name) {
                Some((_, values)) => values.push(value.into_owned()),
                None => params.push((name.to_owned(), vec![value.into_owned()])),
            }
        }
        Self { params }
    }
}

impl<'de> Deserializer<'de> for QueryDeserializer {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_map(Params {
            params: self.params.into_iter(),
            current: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// The parameters as a map; an error of a value is named after its parameter.
struct Params {
    params: std::vec::IntoIter<(String, Vec<String>)>,
    current: Option<(String, Vec<String>)>,
}

impl<'de> de::MapAccess<'de> for Params {
    type Error = QueryError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, QueryError> {
        let Some((name, values)) = self.params.next() else {
            return Ok(None);
        };
        let key = seed.deserialize(name.as_str().into_deserializer())?;
        self.current = Some((name, values));
        Ok(Some(key))
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, QueryError> {
        let Some((name, values)) = self.current.take() else {
            return Err(de::Error::custom("a value without its parameter"));
        };
        seed.deserialize(Values(&values))
            .map_err(|error| QueryError {
                name: Some(error.name.unwrap_or(name)),
                msg: error.msg,
            })
    }
}

/// The values of one parameter: a list takes them all, anything else the last.
struct Values<'a>(&'a [String]);

impl Values<'_> {
    fn last(&self) -> Value<'_> {
        Value(self.0.last().map_or("", String::as_str))
    }
}

macro_rules! from_last {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
                self.last().$method(visitor)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Values<'_> {
    type Error = QueryError;

    from_last! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_identifier
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        // Only parameters with a value are read: an empty one is left out.
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        let items = self
            .0
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(Value);
        visitor.visit_seq(de::value::SeqDeserializer::new(items))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        self.last().deserialize_enum(name, variants, visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        unit unit_struct tuple tuple_struct map struct
    }
}

/// One value, parsed as the field it is read into asks.
struct Value<'a>(&'a str);

impl<'de> IntoDeserializer<'de, QueryError> for Value<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parsed {
    ($($method:ident => $visit:ident,)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
                match self.0.parse() {
                    Ok(value) => visitor.$visit(value),
                    Err(_) => Err(de::Error::custom(format!(
                        "`{}` is not a valid value",
                        self.0
                    ))),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for Value<'_> {
    type Error = QueryError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_str(self.0)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        match self.0 {
            "true" | "True" | "1" => visitor.visit_bool(true),
            "false" | "False" | "0" => visitor.visit_bool(false),
            other => Err(de::Error::custom(format!("`{other}` is not true or false"))),
        }
    }

    parsed! {
        deserialize_i8 => visit_i8,
        deserialize_i16 => visit_i16,
        deserialize_i32 => visit_i32,
        deserialize_i64 => visit_i64,
        deserialize_i128 => visit_i128,
        deserialize_u8 => visit_u8,
        deserialize_u16 => visit_u16,
        deserialize_u32 => visit_u32,
        deserialize_u64 => visit_u64,
        deserialize_u128 => visit_u128,
        deserialize_f32 => visit_f32,
        deserialize_f64 => visit_f64,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, QueryError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, QueryError> {
        let text: StrDeserializer<'_, QueryError> = self.0.into_deserializer();
        visitor.visit_enum(text).map_err(|_| {
            let expected = variants
                .iter()
                .map(|variant| format!("`{variant}`"))
                .collect::<Vec<_>>()
                .join(" or ");
            de::Error::custom(format!("`{}` is not {expected}", self.0))
        })
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use webhookd_core::time::serde_rfc3339;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(default)]
        event_types: Vec<String>,
        #[serde(default = "yes")]
        with_content: bool,
        #[serde(default, deserialize_with = "serde_rfc3339::option::deserialize")]
        before: Option<OffsetDateTime>,
        #[serde(default)]
        channel: Option<String>,
        #[serde(default)]
        status: Option<i64>,
    }

    fn error_of<T: DeserializeOwned + fmt::Debug>(query: &str) -> (Vec<String>, String) {
        match parse::<T>(query) {
            Err(ApiError::Validation(errors)) => (errors[0].loc.clone(), errors[0].msg.clone()),
            other => panic!("{query}: not a validation error: {other:?}"),
        }
    }

    #[test]
    fn lists_take_every_value_and_scalars_the_last() {
        let sample: Sample =
            parse("event_types=a,b&event_types=c&event_types[]=d&status=1&status=2&x=y").unwrap();
        assert_eq!(sample.event_types, ["a", "b", "c", "d"]);
        assert_eq!(sample.status, Some(2));
        assert!(sample.with_content);
        let sample: Sample = parse("channel=&with_content=0&before=2024-01-01T00:00:00").unwrap();
        assert_eq!(sample.channel, None);
        assert!(!sample.with_content);
        assert!(sample.before.is_some());
    }

    #[test]
    fn values_that_do_not_parse_are_named() {
        let (loc, msg) = error_of::<Sample>("with_content=maybe");
        assert_eq!(loc, ["query", "with_content"]);
        assert_eq!(msg, "`maybe` is not true or false");
        let (loc, _) = error_of::<Sample>("before=yesterday");
        assert_eq!(loc, ["query", "before"]);
        let (loc, msg) = error_of::<Sample>("status=one");
        assert_eq!(loc, ["query", "status"]);
        assert_eq!(msg, "`one` is not a valid value");
    }

    #[test]
    fn pages() {
        let page: PageQuery = parse("limit=2&iterator=-msg_1").unwrap();
        let request = page.page(Order::Descending);
        assert_eq!(request.limit, 2);
        assert_eq!(request.order, Order::Descending);
        assert_eq!(
            request.cursor,
            Some(Cursor {
                key: "msg_1".into(),
                backward: true
            })
        );
        let page: PageQuery = parse("order=descending").unwrap();
        assert_eq!(page.page(Order::Ascending).order, Order::Descending);
        assert_eq!(page.limit, DEFAULT_LIMIT);
        for bad in ["limit=0", "limit=251", "limit=-1", "limit=x"] {
            assert_eq!(error_of::<PageQuery>(bad).0, ["query", "limit"], "{bad}");
        }
        let (loc, msg) = error_of::<PageQuery>("order=sideways");
        assert_eq!(loc, ["query", "order"]);
        assert_eq!(msg, "`sideways` is not `ascending` or `descending`");
    }
}
