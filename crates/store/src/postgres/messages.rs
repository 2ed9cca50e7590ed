//! Messages and their fan-out, deliveries and attempts as the API reads them.

use super::sql::Connection;
use const_format::{formatcp, str_replace};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use webhookd_core::EndpointId;
use webhookd_core::model::{DeliveryStatus, Message, POLLING_URL};

use super::list::{Param, param};
use super::rows::{DB_NOW_MS, get, lease_ms, ms, opt_ms, status_code};
use super::sql::query;
use crate::columns::MESSAGE_COLUMNS;
use crate::fanout::FilterPass;
use crate::{Conflict, IdempotentResponse, Lease, Result, StoreError, first_due};

/// Stores the message, its tags and channels (the list's indexes) and a pending delivery for
/// every endpoint that accepts it (the rule of `Endpoint::accepts`, in SQL, and its payload
/// filter; polling endpoints get none), claimed by `claim` when given: the batch statement
/// ([`insert_batch_statement`]) for a batch of one. Each try is one statement, atomic on its
/// own. Returns the endpoints fanned out to, in id order.
pub(crate) async fn insert_message(
    c: &impl Connection,
    message: &Message,
    claim: Option<&Lease>,
) -> Result<Vec<EndpointId>> {
    insert_message_with(c, message, claim, insert_batch_statement()).await
}

/// [`insert_message`], except that a message whose `eventId` is taken is skipped (nothing is
/// stored, no error): for events emitted with an idempotency key inside a larger transaction,
/// which a conflict would abort.
pub(crate) async fn insert_message_once(
    c: &impl Connection,
    message: &Message,
) -> Result<Vec<EndpointId>> {
    insert_message_with(c, message, None, INSERT_BATCH_ONCE).await
}

/// The rule of `Endpoint::accepts` on event types and channels, in SQL (`selects` in Rust),
/// for the endpoint `e` and the message `s` (its `event_type` and `channels`).
const SELECTS_ENDPOINT: &str = "NOT e.disabled \
     AND (cardinality(e.event_types) = 0 OR s.event_type = ANY(e.event_types)) \
     AND (cardinality(e.channels) = 0 OR e.channels && s.channels)";

/// How many tries fan-out makes while it keeps meeting filters it has not evaluated
/// (endpoints given a new filter meanwhile) before it answers `Unavailable` (retry later).
const FILTER_ROUNDS: usize = 4;

/// The payload filters a message was evaluated against: `evaluated` (endpoint ids and the
/// filter texts they had) and, of those, the `accepted` ones.
#[derive(Debug, Default, Clone)]
pub(crate) struct Evaluated {
    evaluated: (Vec<String>, Vec<String>),
    accepted: (Vec<String>, Vec<String>),
}

impl Evaluated {
    /// Evaluates `filter` (an endpoint's) for the message of `pass`, once.
    pub(crate) fn evaluate(&mut self, pass: &mut FilterPass<'_>, endpoint: String, filter: String) {
        if self.evaluated.0.contains(&endpoint) {
            return;
        }
        if pass.accepts(Some(&filter)) {
            self.accepted.0.push(endpoint.clone());
            self.accepted.1.push(filter.clone());
        }
        self.evaluated.0.push(endpoint);
        self.evaluated.1.push(filter);
    }
}

/// What one try of [`insert_batch_statement`] did.
pub(crate) enum Fanned {
    /// The messages are stored, each with deliveries for these endpoints (in id order).
    Out(Vec<Vec<EndpointId>>),
    /// Nothing is stored: these endpoints have filters not evaluated yet (id, filter).
    Unevaluated(Vec<(String, String)>),
}

/// Tries `sql` (a batch statement) for the message until every payload filter among its
/// endpoints has been evaluated: a try that meets filters it was not given stores nothing and
/// returns them, and the next gives their verdicts. Messages of applications without filters
/// are stored in one round trip, and the others in two.
async fn insert_message_with(
    c: &impl Connection,
    message: &Message,
    claim: Option<&Lease>,
    sql: &'static str,
) -> Result<Vec<EndpointId>> {
    let mut evaluated = Evaluated::default();
    let mut filters = FilterPass::new(message);
    for _ in 0..FILTER_ROUNDS {
        let items = [BatchItem {
            message,
            claim,
            filters: &evaluated,
            idempotency: None,
        }];
        let params = insert_batch_params(&items);
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|param| param.as_ref() as _).collect();
        let rows = query(c, sql, &params)
            .await
            .map_err(|error| event_id_taken(message, error))?;
        match batch_fanned_out_to(&rows, &items)? {
            Fanned::Out(mut endpoints) => return Ok(endpoints.pop().unwrap_or_default()),
            Fanned::Unevaluated(unevaluated) => {
                for (id, filter) in unevaluated {
                    evaluated.evaluate(&mut filters, id, filter);
                }
            }
        }
    }
    Err(StoreError::Unavailable(
        "endpoint filters kept changing during the fan-out".into(),
    ))
}

/// A unique violation of a message's insert is its `eventId` (its id is new).
pub(crate) fn event_id_taken(message: &Message, error: StoreError) -> StoreError {
    error.taken_as(|| Conflict::event_id(message.event_id.as_deref()))
}

/// One message of [`insert_batch_statement`]: the message, the lease that claims its
/// deliveries (if any), its payload filters' verdicts and the record of its request's
/// response (sealed), when the request had an idempotency key.
pub(crate) struct BatchItem<'a> {
    pub(crate) message: &'a Message,
    pub(crate) claim: Option<&'a Lease>,
    pub(crate) filters: &'a Evaluated,
    pub(crate) idempotency: Option<&'a IdempotentResponse>,
}

/// The statement that stores a whole batch of messages: every message, its labels, its
/// deliveries and the idempotency records of the batch, each table in one multi-row insert
/// over arrays (a column per array, a message per index; a message's channels and tags as one
/// array literal each, and its filters' verdicts flattened with the message's index). One
/// statement is one transaction: it needs no `BEGIN` and `COMMIT` of its own, and its answer
/// comes after its commit. The idempotency records are a plain insert (which spares each row
/// the speculative insertion of `ON CONFLICT`): a key already recorded, live or stale, or
/// twice in the batch fails the whole statement, and the caller then writes each message
/// alone (with `crate::admin::SAVE_IDEMPOTENT`, which replaces a stale record). When an
/// endpoint of any message has a filter not in its verdicts, nothing is stored and those
/// endpoints are returned instead (message id, endpoint id, filter). Otherwise the rows are
/// the deliveries (message id, endpoint id, NULL, whether claimed). Deliveries are inserted
/// in endpoint id order, then the batch's order: an ordered endpoint's numbers follow the
/// batch, and two batches lock ordered endpoints in one order. Each application's endpoints
/// are read once, through its index whatever the table's statistics say (the `LATERAL`
/// read, fenced by `OFFSET 0`, cannot become a scan of every endpoint).
pub(crate) fn insert_batch_statement() -> &'static str {
    INSERT_BATCH
}

/// The batch statement with the given ending of the messages' insert and condition on the
/// rows that follow a message (its labels and deliveries): [`INSERT_BATCH`] stores every
/// message or none, [`INSERT_BATCH_ONCE`] skips one whose `eventId` is taken.
macro_rules! insert_batch {
    ($on_conflict:literal, $stored:literal, $target_stored:literal) => {
        formatcp!(
            "WITH s AS MATERIALIZED ( \
               SELECT ix, id, app_id, event_type, event_id, payload, \
                 channel_list::text[] AS channels, tag_list::text[] AS tags, created_at, deliver_at, \
                 retain_payload_until, due, lease_owner, lease_ms \
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[], \
                 $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], \
                 $13::bigint[]) WITH ORDINALITY \
               AS b(id, app_id, event_type, event_id, payload, channel_list, tag_list, created_at, \
                 deliver_at, retain_payload_until, due, lease_owner, lease_ms, ix)), \
             e AS MATERIALIZED ( \
               SELECT e.* FROM (SELECT DISTINCT app_id FROM s) a, LATERAL ( \
                 SELECT id, app_id, disabled, event_types, channels, payload_filter FROM endpoints \
                 WHERE app_id = a.app_id AND url <> '{POLLING_URL}' OFFSET 0) e), \
             targets AS MATERIALIZED ( \
               SELECT s.ix, s.id AS msg_id, s.app_id, s.due, s.lease_owner, s.lease_ms, s.created_at, \
                 e.id AS endpoint_id, e.payload_filter \
               FROM s JOIN e ON e.app_id = s.app_id WHERE {SELECTS_ENDPOINT}), \
             unevaluated AS ( \
               SELECT msg_id, endpoint_id, payload_filter FROM targets \
               WHERE payload_filter IS NOT NULL AND (ix, endpoint_id, payload_filter) NOT IN \
                 (SELECT * FROM unnest($15::bigint[], $16::text[], $17::text[]))), \
             message AS ( \
               INSERT INTO messages ({}) \
               SELECT id, app_id, event_type, event_id, payload, channels, tags, created_at, \
                 deliver_at, retain_payload_until \
               FROM s WHERE NOT EXISTS (SELECT 1 FROM unevaluated) ORDER BY ix{}), \
             tags AS (INSERT INTO message_tags (app_id, tag, msg_id) \
               SELECT DISTINCT s.app_id, tag, s.id FROM s, unnest(s.tags) AS t(tag) \
               WHERE NOT EXISTS (SELECT 1 FROM unevaluated){}), \
             channels AS (INSERT INTO message_channels (app_id, channel, msg_id) \
               SELECT DISTINCT s.app_id, channel, s.id FROM s, unnest(s.channels) AS c(channel) \
               WHERE NOT EXISTS (SELECT 1 FROM unevaluated){}), \
             keys AS (INSERT INTO idempotency (key_hash, status, body, created_at) \
               SELECT * FROM unnest($21::text[], $22::integer[], $23::bytea[], $24::bigint[]) \
               WHERE NOT EXISTS (SELECT 1 FROM unevaluated)), \
             fanned_out AS (INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
               next_attempt_at, lease_owner, lease_until, created_at, updated_at) \
             SELECT msg_id, endpoint_id, app_id, $14::smallint, 0, due, lease_owner, \
               {DB_NOW_MS} + lease_ms, created_at, created_at \
             FROM targets \
             WHERE NOT EXISTS (SELECT 1 FROM unevaluated){} \
             AND (payload_filter IS NULL OR (ix, endpoint_id, payload_filter) IN \
               (SELECT * FROM unnest($18::bigint[], $19::text[], $20::text[]))) \
             ORDER BY endpoint_id, ix \
             RETURNING msg_id, endpoint_id, lease_owner IS NOT NULL AS claimed) \
             SELECT msg_id, endpoint_id, NULL::text, claimed FROM fanned_out \
             UNION ALL SELECT msg_id, endpoint_id, payload_filter, false FROM unevaluated",
            str_replace!(MESSAGE_COLUMNS, "m.", ""),
            $on_conflict,
            $stored,
            $stored,
            $target_stored,
        )
    };
}

const INSERT_BATCH: &str = insert_batch!("", "", "");

/// [`INSERT_BATCH`], except that a message whose `eventId` is taken is skipped, with its
/// labels and deliveries (nothing is stored for it, no error).
const INSERT_BATCH_ONCE: &str = insert_batch!(
    " ON CONFLICT DO NOTHING RETURNING id",
    " AND s.id IN (SELECT id FROM message)",
    " AND msg_id IN (SELECT id FROM message)"
);

/// The parameters of [`insert_batch_statement`].
pub(crate) fn insert_batch_params(items: &[BatchItem<'_>]) -> Vec<Param> {
    let messages = || items.iter().map(|item| item.message);
    let texts = |field: fn(&Message) -> &str| -> Param {
        param(messages().map(|m| field(m).to_owned()).collect::<Vec<_>>())
    };
    let ints = |field: fn(&Message) -> Option<i64>| -> Param {
        param(messages().map(field).collect::<Vec<_>>())
    };
    // A message's verdicts, flattened: its index in the batch (from 1), endpoint, filter.
    let flatten = |verdicts: fn(&Evaluated) -> &(Vec<String>, Vec<String>)| -> [Param; 3] {
        let (mut ix, mut endpoints, mut filters) = (Vec::new(), Vec::new(), Vec::new());
        for (index, item) in (1_i64..).zip(items) {
            let (ids, texts) = verdicts(item.filters);
            ix.extend(std::iter::repeat_n(index, ids.len()));
            endpoints.extend(ids.iter().cloned());
            filters.extend(texts.iter().cloned());
        }
        [param(ix), param(endpoints), param(filters)]
    };
    let [evaluated_ix, evaluated_endpoints, evaluated_filters] =
        flatten(|filters| &filters.evaluated);
    let [accepted_ix, accepted_endpoints, accepted_filters] = flatten(|filters| &filters.accepted);
    let keyed = || items.iter().filter_map(|item| item.idempotency);
    vec![
        texts(|m| m.id.as_str()),
        texts(|m| m.app_id.as_str()),
        texts(|m| &m.event_type),
        param(messages().map(|m| m.event_id.clone()).collect::<Vec<_>>()),
        param(messages().map(|m| m.payload.to_vec()).collect::<Vec<_>>()),
        param(
            messages()
                .map(|m| array_literal(&m.channels))
                .collect::<Vec<_>>(),
        ),
        param(
            messages()
                .map(|m| array_literal(&m.tags))
                .collect::<Vec<_>>(),
        ),
        ints(|m| Some(ms(m.created_at))),
        ints(|m| opt_ms(m.deliver_at)),
        ints(|m| opt_ms(m.retain_payload_until)),
        ints(|m| Some(ms(first_due(m)))),
        param(
            items
                .iter()
                .map(|item| item.claim.map(|lease| lease.owner.clone()))
                .collect::<Vec<_>>(),
        ),
        param(
            items
                .iter()
                .map(|item| item.claim.map(lease_ms))
                .collect::<Vec<_>>(),
        ),
        param(status_code(DeliveryStatus::Pending)),
        evaluated_ix,
        evaluated_endpoints,
        evaluated_filters,
        accepted_ix,
        accepted_endpoints,
        accepted_filters,
        param(keyed().map(|r| r.key_hash.clone()).collect::<Vec<_>>()),
        param(keyed().map(|r| i32::from(r.status)).collect::<Vec<_>>()),
        param(keyed().map(|r| r.body.clone()).collect::<Vec<_>>()),
        param(keyed().map(|r| ms(r.created_at)).collect::<Vec<_>>()),
    ]
}

/// `values` as a PostgreSQL array literal (`{"a","b\"c"}`), which `::text[]` reads back exactly.
fn array_literal(values: &[String]) -> String {
    let mut literal = String::from("{");
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            literal.push(',');
        }
        literal.push('"');
        for c in value.chars() {
            if c == '"' || c == '\\' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

/// What [`insert_batch_statement`] returned, for `items`: each message's endpoints fanned out
/// to (in id order; for a claimed message, only those whose delivery kept its claim: the insert
/// trigger takes the claim off an ordered endpoint's delivery that is not the head of its
/// line, and the scheduler hands it out in its turn), or the endpoints whose filters were not
/// evaluated (nothing stored).
pub(crate) fn batch_fanned_out_to(rows: &[Row], items: &[BatchItem<'_>]) -> Result<Fanned> {
    let index: std::collections::HashMap<&str, usize> = items
        .iter()
        .enumerate()
        .map(|(at, item)| (item.message.id.as_str(), at))
        .collect();
    let mut fanned_out = vec![Vec::new(); items.len()];
    let mut unevaluated = Vec::new();
    for row in rows {
        let msg: &str = get(row, 0)?;
        let endpoint: String = get(row, 1)?;
        let Some(&at) = index.get(msg) else {
            return Err(StoreError::Unavailable(
                "the batch's insert returned a message it was not given".into(),
            ));
        };
        match get::<Option<String>>(row, 2)? {
            None if items[at].claim.is_some() && !get::<bool>(row, 3)? => {}
            None => fanned_out[at].push(EndpointId::from_trusted(endpoint)),
            Some(filter) => unevaluated.push((endpoint, filter)),
        }
    }
    if !unevaluated.is_empty() {
        return Ok(Fanned::Unevaluated(unevaluated));
    }
    for endpoints in &mut fanned_out {
        endpoints.sort();
    }
    Ok(Fanned::Out(fanned_out))
}
