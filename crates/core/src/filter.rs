//! Payload filters: an endpoint's CEL expression that a message must satisfy to be delivered
//! to it, beside its event types and channels.
//!
//! A filter sees three variables: `payload` (the message's JSON payload), `eventType` (a
//! string) and `channels` (a list of strings), e.g.
//! `payload.amount > 100 && payload.currency == "EUR"`.
//!
//! **Evaluation rules.** A message matches when the expression evaluates to `true`. Any other
//! result — `false`, a value that is not a boolean, or an error at evaluation (a missing field,
//! a comparison of the wrong types, a division by zero) — means "does not match": a filter never
//! fails a message, it only lets it through or not. `has(payload.field)` tests for a field
//! without erring.
//!
//! **Bounds.** A filter is at most [`MAX_FILTER_LENGTH`] bytes and nests at most
//! [`MAX_FILTER_NESTING`] levels (checked while parsing, so neither the parser nor the
//! evaluator, which recurse over the tree, can exhaust the stack). The comprehension macros
//! (`all`, `exists`, `exists_one`, `map`, `filter`) are refused: without them an expression is
//! evaluated in one pass over its tree, each node once, so its cost is bounded by the size of
//! the expression times the size of the payload, and no filter can hang a fan-out.
//!
//! Compiling is done once per filter text: [`FilterCache`] keeps the compiled filters keyed by
//! their source, so a changed filter is compiled afresh and an unchanged one never again.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use cel::common::ast::{EntryExpr, Expr, SourceInfo};
use cel::{Context, Env, IdedExpr, Value};

/// The longest filter, in bytes.
pub const MAX_FILTER_LENGTH: usize = 4096;
/// The deepest nesting of a filter's expression tree.
pub const MAX_FILTER_NESTING: u16 = 32;
/// The variables a filter may name, and the type names CEL lets it compare with.
const KNOWN_NAMES: [&str; 13] = [
    "payload",
    "eventType",
    "channels",
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];
/// The most compiled filters a [`FilterCache`] keeps before it starts afresh.
const CACHE_CAPACITY: usize = 4096;

/// The standard environment every filter is compiled and evaluated in, built once.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Why a filter was refused, and where: line and column are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line}, column {column}")]
pub struct FilterError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl FilterError {
    fn at_start(message: impl Into<String>) -> Self {
        Self {
            line: 1,
            column: 1,
            message: message.into(),
        }
    }
}

/// A compiled payload filter.
#[derive(Debug)]
pub struct PayloadFilter {
    source: String,
    expression: IdedExpr,
}

impl PayloadFilter {
    /// Parses and checks a filter: its size, syntax, nesting, and that it names only the
    /// known variables and uses no comprehension.
    pub fn compile(source: &str) -> Result<Self, FilterError> {
        if source.len() > MAX_FILTER_LENGTH {
            return Err(FilterError::at_start(format!(
                "a payload filter must be at most {MAX_FILTER_LENGTH} bytes long, not {}",
                source.len()
            )));
        }
        if source.trim().is_empty() {
            return Err(FilterError::at_start("a payload filter must not be empty"));
        }
        let (expression, info) = ENV
            .parser()
            .max_recursion_depth(MAX_FILTER_NESTING)
            .parse_with_source_info(source)
            .map_err(|errors| {
                let first = errors.errors.first();
                let (line, column) = first.map_or((1, 0), |error| error.pos);
                FilterError {
                    line: u32::try_from(line.max(1)).unwrap_or(1),
                    column: u32::try_from(column.max(1)).unwrap_or(1),
                    message: first.map_or_else(
                        || "the payload filter does not parse".to_owned(),
                        |error| error.msg.clone(),
                    ),
                }
            })?;
        check_tree(&expression, &info)?;
        Ok(Self {
            source: source.to_owned(),
            expression,
        })
    }

    /// The text the filter was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether a message with this input passes the filter: only a `true` result does.
    pub fn matches(&self, input: &FilterInput) -> bool {
        self.evaluate(input) == Ok(true)
    }

    /// The filter's verdict on the input, or why it could not be evaluated to a boolean
    /// (which [`PayloadFilter::matches`] takes as "does not match").
    pub fn evaluate(&self, input: &FilterInput) -> Result<bool, String> {
        let mut context = Context::with_env(Arc::clone(&ENV));
        context.add_variable_from_value("payload", input.payload.clone());
        context.add_variable_from_value("eventType", input.event_type.clone());
        context.add_variable_from_value("channels", input.channels.clone());
        match Value::resolve(&self.expression, &context) {
            Ok(Value::Bool(verdict)) => Ok(verdict),
            Ok(other) => Err(format!(
                "the filter gave {} where a bool was expected",
                other.type_of()
            )),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// Refuses comprehensions and unknown variables, pointing at where they are written.
fn check_tree(expression: &IdedExpr, info: &SourceInfo) -> Result<(), FilterError> {
    let at = |id: u64, message: String| {
        let (line, column) = position(info, id);
        FilterError {
            line,
            column,
            message,
        }
    };
    match &expression.expr {
        Expr::Comprehension(_) => Err(at(
            expression.id,
            "payload filters may not use `all`, `exists`, `exists_one`, `map` or `filter`"
                .to_owned(),
        )),
        Expr::Ident(name) if !KNOWN_NAMES.contains(&name.as_str()) => Err(at(
            expression.id,
            format!(
                "unknown variable `{name}`: a filter may use `payload`, `eventType` and `channels`"
            ),
        )),
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                check_tree(target, info)?;
            }
            call.args.iter().try_for_each(|arg| check_tree(arg, info))
        }
        Expr::List(list) => list
            .elements
            .iter()
            .try_for_each(|element| check_tree(element, info)),
        Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(entry) => {
                check_tree(&entry.key, info)?;
                check_tree(&entry.value, info)
            }
            EntryExpr::StructField(field) => check_tree(&field.value, info),
        }),
        Expr::Struct(object) => object
            .entries
            .iter()
            .try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(entry) => {
                    check_tree(&entry.key, info)?;
                    check_tree(&entry.value, info)
                }
                EntryExpr::StructField(field) => check_tree(&field.value, info),
            }),
        Expr::Select(select) => check_tree(&select.operand, info),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Ok(()),
    }
}

/// The 1-based line and column where the node `id` begins.
fn position(info: &SourceInfo, id: u64) -> (u32, u32) {
    let Some((start, _)) = info.offset_for(id) else {
        return (1, 1);
    };
    let start = start as usize;
    let (mut line, mut line_start) = (1u32, 0usize);
    for (index, character) in info.source.char_indices() {
        if index >= start {
            break;
        }
        if character == '\n' {
            line += 1;
            line_start = index + 1;
        }
    }
    let column = info
        .source
        .get(line_start..start)
        .map_or(0, |text| text.chars().count());
    (line, u32::try_from(column + 1).unwrap_or(u32::MAX))
}

/// What a filter sees of one message, converted once and shared by every endpoint's filter.
#[derive(Debug, Clone)]
pub struct FilterInput {
    payload: Value,
    event_type: Value,
    channels: Value,
}

impl FilterInput {
    /// The input for a message. A payload that is not JSON (an expunged one is empty) is
    /// seen as `null`.
    pub fn new(payload: &[u8], event_type: &str, channels: &[String]) -> Self {
        let payload = serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|json| cel::to_value(json).ok())
            .unwrap_or(Value::Null);
        Self::with_payload(payload, event_type, channels)
    }

    /// The input for a payload already parsed.
    pub fn from_json(payload: &serde_json::Value, event_type: &str, channels: &[String]) -> Self {
        let payload = cel::to_value(payload).unwrap_or(Value::Null);
        Self::with_payload(payload, event_type, channels)
    }

    fn with_payload(payload: Value, event_type: &str, channels: &[String]) -> Self {
        Self {
            payload,
            event_type: Value::from(event_type.to_owned()),
            channels: Value::List(Arc::new(
                channels
                    .iter()
                    .map(|channel| Value::from(channel.clone()))
                    .collect(),
            )),
        }
    }
}

/// Compiled filters keyed by their source text: each text is compiled once, and an updated
/// filter (a new text) is compiled when first seen. Shared by every thread of a store.
#[derive(Debug, Default)]
pub struct FilterCache {
    compiled: Mutex<HashMap<String, Arc<PayloadFilter>>>,
}

impl FilterCache {
    /// The compiled filter for this text, compiled now if it is new. A text that does not
    /// compile (one stored before a rule changed) is an error, which fan-out takes as "does
    /// not match".
    pub fn get(&self, source: &str) -> Result<Arc<PayloadFilter>, FilterError> {
        if let Some(filter) = self.lock().get(source) {
            return Ok(Arc::clone(filter));
        }
        let filter = Arc::new(PayloadFilter::compile(source)?);
        let mut compiled = self.lock();
        // Filters no endpoint uses any more are dropped by starting afresh now and then.
        if compiled.len() >= CACHE_CAPACITY {
            compiled.clear();
        }
        compiled.insert(source.to_owned(), Arc::clone(&filter));
        Ok(filter)
    }

    /// Whether the message passes the filter written `source`.
    pub fn matches(&self, source: &str, input: &FilterInput) -> bool {
        self.get(source).is_ok_and(|filter| filter.matches(input))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PayloadFilter>>> {
        // The map holds no invariant a panic could break, so a poisoned lock is taken as is.
        self.compiled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(payload: &str) -> FilterInput {
        FilterInput::new(payload.as_bytes(), "invoice.paid", &["eu".to_owned()])
    }

    fn matches(filter: &str, payload: &str) -> bool {
        PayloadFilter::compile(filter)
            .unwrap()
            .matches(&input(payload))
    }

    #[test]
    fn matches_and_does_not_match() {
        let filter = r#"payload.amount > 100 && payload.currency == "EUR""#;
        assert!(matches(filter, r#"{"amount": 150, "currency": "EUR"}"#));
        assert!(!matches(filter, r#"{"amount": 50, "currency": "EUR"}"#));
        assert!(!matches(filter, r#"{"amount": 150, "currency": "USD"}"#));
        assert!(matches(r#"payload.amount > 100.5"#, r#"{"amount": 150}"#));
        assert!(matches(r#"payload.amount > 100"#, r#"{"amount": 100.5}"#));
        assert!(matches(
            r#"eventType.startsWith("invoice.") && "eu" in channels"#,
            "{}"
        ));
        assert!(matches(
            r#"payload.user.tags[0] == "vip""#,
            r#"{"user": {"tags": ["vip"]}}"#
        ));
        assert!(matches("has(payload.a) || !has(payload.b)", r#"{"c": 1}"#));
    }

    #[test]
    fn an_evaluation_error_does_not_match() {
        // A missing field, a type mismatch, a non-boolean result, a division by zero.
        assert!(!matches("payload.missing > 1", r#"{"amount": 1}"#));
        assert!(!matches(r#"payload.amount > "1""#, r#"{"amount": 1}"#));
        assert!(!matches("payload.amount", r#"{"amount": 1}"#));
        assert!(!matches("payload.amount / 0 == 1", r#"{"amount": 1}"#));
        assert!(!matches("payload.a == 1", "not json"));
        let filter = PayloadFilter::compile("payload.missing > 1").unwrap();
        assert!(filter.evaluate(&input("{}")).is_err());
    }

    #[test]
    fn a_syntax_error_gives_its_position() {
        let error = PayloadFilter::compile("payload.amount >").unwrap_err();
        assert_eq!((error.line, error.column), (1, 17), "{error}");
        let error = PayloadFilter::compile("payload.a == 1 &&\n  payload.b ==").unwrap_err();
        assert_eq!(error.line, 2, "{error}");
        assert!(error.to_string().contains("line 2"), "{error}");
    }

    #[test]
    fn refuses_what_could_run_long_or_deep() {
        let error = PayloadFilter::compile("payload.items.all(x, x > 1)").unwrap_err();
        assert!(error.message.contains("`all`"), "{error}");
        assert_eq!((error.line, error.column), (1, 18));
        let error = PayloadFilter::compile("payload.a == 1 || amount > 2").unwrap_err();
        assert!(error.message.contains("`amount`"), "{error}");
        assert_eq!((error.line, error.column), (1, 19));
        let deep = format!("{}1{}", "(".repeat(200), ")".repeat(200));
        assert!(PayloadFilter::compile(&deep).is_err());
        let long = format!("payload.a == \"{}\"", "x".repeat(MAX_FILTER_LENGTH));
        assert!(PayloadFilter::compile(&long).is_err());
        assert!(PayloadFilter::compile("  ").is_err());
    }

    #[test]
    fn the_cache_compiles_each_text_once() {
        let cache = FilterCache::default();
        let first = cache.get("payload.a == 1").unwrap();
        let again = cache.get("payload.a == 1").unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let changed = cache.get("payload.a == 2").unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert!(cache.matches("payload.a == 2", &input(r#"{"a": 2}"#)));
        assert!(!cache.matches("payload.a ==", &input(r#"{"a": 2}"#)));
    }
}
