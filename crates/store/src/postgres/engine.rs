//! The engine's side of storage: claims and leases, attempt results, recovery and retention.
//!
//! Leases are measured by the database's clock (`now()` in SQL): a lease is written as the
//! database's now plus the lease's length, and a claim takes a delivery whose lease ended by
//! the database's now. Nodes whose clocks disagree therefore agree on which leases are live.
//! Due times (`next_attempt_at`: retries, `deliverAt`) are still the nodes' clocks.
//!
//! Claims are what several nodes contend for. A claim locks the due rows it picks with
//! `FOR UPDATE SKIP LOCKED`, so two nodes claiming at once take disjoint sets without waiting
//! on each other, and re-checks the lease on the row it locked, so a claim committed a moment
//! earlier by another node is not taken again. Every other write here is guarded by the lease
//! owner or the delivery's status, as in SQLite, so a late result cannot undo a newer state.

use std::collections::HashSet;

use const_format::{formatcp, str_replace};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use webhookd_core::time::from_unix_ms;
use webhookd_core::{EndpointId, MessageId};

use super::list::{Param, param};
use super::listen::notify_due;
use super::rows::{self, DB_NOW_MS, get, lease_ms, ms, status_code};
use super::sql::{Connection, Pipeline, Planned, execute_planned, query};
use crate::columns::{ATTEMPT_COLUMNS, DELIVERY_COLUMNS, DELIVERY_WIDTH, MESSAGE_COLUMNS};
use crate::status::{FAIL, PENDING, SUCCESS};
use crate::{AttemptRecord, DeliveryUpdate, Due, Lease, Result};

/// Each ordered endpoint (`en`, through `endpoints_ordered`) and the key of the head of its
/// line (`h.msg_id`): its pending delivery with the smallest number, through `deliveries_line`.
/// The caller reads the head's row by its key, in a `LATERAL` of its own. The claim hands out
/// numbered deliveries only from here, so nothing of a line is sent while an earlier delivery
/// of it is pending (leased, or waiting for a retry: it holds the line); an expired lease (a
/// dead node's) lets the head be claimed again. Two nodes claiming at once: the head is locked by
/// one and skipped by the other, for which it is still the smallest pending number, so neither
/// takes the next. Numbered deliveries are not in `deliveries_due`, so a long line costs the
/// claim nothing but its head.
///
/// Every step is a lookup of its own, fenced (`OFFSET 0`, `LATERAL`) so that no plan can turn
/// it into a scan of the deliveries: a young table has no statistics, and a plan that joined
/// a scan of every delivery to the heads made each claim cost the whole table (on a line of
/// thousands, a few milliseconds of the database's time per delivery).
const LINE_HEADS: &str = formatcp!(
    "(SELECT id FROM endpoints WHERE ordered OFFSET 0) en, \
     LATERAL (SELECT x.msg_id FROM deliveries x \
              WHERE x.endpoint_id = en.id AND x.status = {PENDING} AND x.seq IS NOT NULL \
              ORDER BY x.seq LIMIT 1) h"
);

/// What a claim may take: due, not leased (or its lease ended by the database's clock), and
/// not of an endpoint the caller skips.
const CLAIMABLE: &str = formatcp!(
    "d.next_attempt_at <= $3 AND (d.lease_until IS NULL OR d.lease_until < {DB_NOW_MS} + $6) \
     AND d.endpoint_id <> ALL($4::text[])"
);
/// Unordered deliveries and the heads of the ordered endpoints' lines, each locked as it is
/// picked; the oldest due of both are claimed. The heads are chosen first (the oldest due, at
/// most the claim's size) and only those are locked, each by its key.
const CLAIM_DUE: &str = formatcp!(
    "WITH unordered AS ( \
       SELECT d.msg_id, d.endpoint_id, d.next_attempt_at FROM deliveries d \
       WHERE d.status = {PENDING} AND d.seq IS NULL AND {CLAIMABLE} \
       ORDER BY d.next_attempt_at LIMIT $5 \
       FOR UPDATE SKIP LOCKED), \
     candidates AS MATERIALIZED ( \
       SELECT h.msg_id, en.id AS endpoint_id FROM {LINE_HEADS}, \
       LATERAL (SELECT d.next_attempt_at FROM deliveries d \
                WHERE d.msg_id = h.msg_id AND d.endpoint_id = en.id AND {CLAIMABLE} OFFSET 0) d \
       ORDER BY d.next_attempt_at LIMIT $5), \
     heads AS ( \
       SELECT d.msg_id, d.endpoint_id, d.next_attempt_at FROM candidates c, \
       LATERAL (SELECT d.msg_id, d.endpoint_id, d.next_attempt_at FROM deliveries d \
                WHERE d.msg_id = c.msg_id AND d.endpoint_id = c.endpoint_id AND {CLAIMABLE} \
                FOR UPDATE SKIP LOCKED) d), \
     picked AS ( \
       SELECT msg_id, endpoint_id FROM (SELECT * FROM unordered UNION ALL SELECT * FROM heads) u \
       ORDER BY next_attempt_at LIMIT $5), \
     claimed AS ( \
       UPDATE deliveries SET lease_owner = $1, lease_until = {DB_NOW_MS} + $2 \
       WHERE (msg_id, endpoint_id) IN (SELECT msg_id, endpoint_id FROM picked) \
       RETURNING *) \
     SELECT {DELIVERY_COLUMNS}, {MESSAGE_COLUMNS} FROM claimed d \
     JOIN messages m ON m.id = d.msg_id ORDER BY d.next_attempt_at"
);

/// Claims due deliveries. `now` decides what is due; whether a lease has ended is decided on
/// the database's clock, at `now` translated to it (the scheduler passes its own now, so that
/// is the database's now; a caller may pass a later `now` to look ahead in time).
pub(crate) async fn claim_due(
    c: &impl Connection,
    lease: &Lease,
    now: OffsetDateTime,
    limit: usize,
    skip_endpoints: &[EndpointId],
) -> Result<Vec<Due>> {
    let skip: Vec<&str> = skip_endpoints.iter().map(EndpointId::as_str).collect();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Unordered deliveries and the heads of the ordered endpoints' lines, each locked as it
    // is picked; the oldest due of both are claimed.
    let claimed = query(
        c,
        CLAIM_DUE,
        &[
            &lease.owner,
            &lease_ms(lease),
            &ms(now),
            &skip,
            &limit,
            &(ms(now) - ms(webhookd_core::time::now())),
        ],
    )
    .await?;
    rows::all(&claimed, |row| {
        Ok(Due {
            delivery: crate::rows::delivery_at(&crate::db::Row::Postgres(row), 0)?,
            message: crate::rows::message_at(&crate::db::Row::Postgres(row), DELIVERY_WIDTH)?,
        })
    })
}

pub(crate) async fn renew_leases(
    c: &impl Connection,
    lease: &Lease,
    keys: &[(MessageId, EndpointId)],
) -> Result<u64> {
    if keys.is_empty() {
        return Ok(0);
    }
    let messages: Vec<&str> = keys.iter().map(|(msg, _)| msg.as_str()).collect();
    let endpoints: Vec<&str> = keys.iter().map(|(_, endpoint)| endpoint.as_str()).collect();
    const RENEW: Planned = Planned {
        sql: formatcp!(
            "UPDATE deliveries d SET lease_until = {DB_NOW_MS} + $1 \
             FROM unnest($3::text[], $4::text[]) AS k(msg_id, endpoint_id) \
             WHERE d.msg_id = k.msg_id AND d.endpoint_id = k.endpoint_id \
             AND d.lease_owner = $2 AND d.status = {PENDING}"
        ),
        types: &[Type::INT8, Type::TEXT, Type::TEXT_ARRAY, Type::TEXT_ARRAY],
    };
    execute_planned(
        c,
        &RENEW,
        &[&lease_ms(lease), &lease.owner, &messages, &endpoints],
    )
    .await
}

/// Gives the claims back and wakes the other nodes, which may take them at once.
pub(crate) async fn release_leases(
    c: &impl Connection,
    owner: &str,
    keys: &[(MessageId, EndpointId)],
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let messages: Vec<&str> = keys.iter().map(|(msg, _)| msg.as_str()).collect();
    let endpoints: Vec<&str> = keys.iter().map(|(_, endpoint)| endpoint.as_str()).collect();
    const RELEASE: Planned = Planned {
        sql: "UPDATE deliveries d SET lease_owner = NULL, lease_until = NULL \
              FROM unnest($2::text[], $3::text[]) AS k(msg_id, endpoint_id) \
              WHERE d.msg_id = k.msg_id AND d.endpoint_id = k.endpoint_id AND d.lease_owner = $1",
        types: &[Type::TEXT, Type::TEXT_ARRAY, Type::TEXT_ARRAY],
    };
    let released = execute_planned(c, &RELEASE, &[&owner, &messages, &endpoints]).await?;
    if released > 0 {
        notify_due(c).await?;
    }
    Ok(())
}

/// Writes the attempts, their deliveries' and their endpoints' new state and the rollup as
/// one pipeline: a batch costs one round trip. The attempts go in as one multi-row statement,
/// and the deliveries' updates as one statement per kind of result, unless two records of the
/// batch are for one delivery (then one statement each, in order). Call inside a transaction,
/// then `crate::operational::after_attempts`.
pub(crate) async fn record_attempts(c: &impl Connection, records: &[AttemptRecord]) -> Result<()> {
    let mut pipeline = Pipeline::default();
    insert_attempts(&mut pipeline, records);
    let keys: HashSet<(&str, &str)> = records
        .iter()
        .map(|record| {
            (
                record.attempt.msg_id.as_str(),
                record.attempt.endpoint_id.as_str(),
            )
        })
        .collect();
    if keys.len() == records.len() {
        update_deliveries(&mut pipeline, records)?;
    } else {
        for record in records {
            update_delivery(&mut pipeline, record)?;
        }
    }
    for record in records {
        crate::engine::health_statement(record, push_to(&mut pipeline))?;
    }
    super::rollup::add(&mut pipeline, records);
    pipeline.run(c).await?;
    Ok(())
}

/// Every attempt of the batch in one statement, a column per array.
fn insert_attempts(pipeline: &mut Pipeline, records: &[AttemptRecord]) {
    if records.is_empty() {
        return;
    }
    let attempts = records.iter().map(|record| &record.attempt);
    let texts = |field: fn(&webhookd_core::model::Attempt) -> &str| -> Param {
        param(
            attempts
                .clone()
                .map(|a| field(a).to_owned())
                .collect::<Vec<_>>(),
        )
    };
    pipeline.push(
        formatcp!(
            "INSERT INTO attempts ({}) SELECT * FROM unnest($1::text[], $2::text[], \
             $3::text[], $4::text[], $5::text[], $6::smallint[], $7::integer[], $8::text[], \
             $9::bigint[], $10::smallint[], $11::bigint[])",
            str_replace!(ATTEMPT_COLUMNS, "a.", "")
        ),
        vec![
            texts(|a| a.id.as_str()),
            texts(|a| a.msg_id.as_str()),
            texts(|a| a.endpoint_id.as_str()),
            texts(|a| a.app_id.as_str()),
            texts(|a| &a.url),
            param(
                attempts
                    .clone()
                    .map(|a| status_code(a.status))
                    .collect::<Vec<_>>(),
            ),
            param(
                attempts
                    .clone()
                    .map(|a| i32::from(a.response_status_code))
                    .collect::<Vec<_>>(),
            ),
            // PostgreSQL text cannot hold NUL, which an endpoint may well answer with.
            param(
                attempts
                    .clone()
                    .map(|a| a.response.replace('\0', "\u{fffd}"))
                    .collect::<Vec<_>>(),
            ),
            param(
                attempts
                    .clone()
                    .map(|a| i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
                    .collect::<Vec<_>>(),
            ),
            param(
                attempts
                    .clone()
                    .map(|a| a.trigger_type.code() as i16)
                    .collect::<Vec<_>>(),
            ),
            param(attempts.map(|a| ms(a.created_at)).collect::<Vec<_>>()),
        ],
    );
}

/// The deliveries' updates of a batch whose records are for distinct deliveries: one
/// statement per kind of result (manual results, rare, one by one), each [`Planned`] for its
/// keys. Each applies as [`update_delivery`] would.
fn update_deliveries(pipeline: &mut Pipeline, records: &[AttemptRecord]) -> Result<()> {
    #[derive(Default)]
    struct Columns {
        msgs: Vec<String>,
        endpoints: Vec<String>,
        at: Vec<i64>,
        next: Vec<i64>,
        owners: Vec<String>,
    }
    impl Columns {
        fn push(&mut self, record: &AttemptRecord, next: Option<i64>) {
            let attempt = &record.attempt;
            self.msgs.push(attempt.msg_id.as_str().to_owned());
            self.endpoints.push(attempt.endpoint_id.as_str().to_owned());
            self.at.push(ms(attempt.created_at));
            self.next.extend(next);
            self.owners.push(record.owner.clone());
        }
    }
    let (mut delivered, mut retried, mut failed) = Default::default();
    for record in records {
        match record.delivery {
            DeliveryUpdate::Delivered => Columns::push(&mut delivered, record, None),
            DeliveryUpdate::RetryAt(next) => Columns::push(&mut retried, record, Some(ms(next))),
            DeliveryUpdate::Failed => Columns::push(&mut failed, record, None),
            DeliveryUpdate::Manual { .. } => update_delivery(pipeline, record)?,
        }
    }
    let (delivered, retried, failed): (Columns, Columns, Columns) = (delivered, retried, failed);
    const TEXTS: Type = Type::TEXT_ARRAY;
    const INTS: Type = Type::INT8_ARRAY;
    if !delivered.msgs.is_empty() {
        const DELIVERED: Planned = Planned {
            sql: formatcp!(
                "UPDATE deliveries d SET status = {SUCCESS}, attempts = d.attempts + 1, \
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, updated_at = k.at \
                 FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(msg_id, endpoint_id, at) \
                 WHERE d.msg_id = k.msg_id AND d.endpoint_id = k.endpoint_id"
            ),
            types: &[TEXTS, TEXTS, INTS],
        };
        pipeline.push_planned(
            &DELIVERED,
            vec![
                param(delivered.msgs),
                param(delivered.endpoints),
                param(delivered.at),
            ],
        );
    }
    // A scheduled result applies only while the delivery is still pending and ours.
    if !retried.msgs.is_empty() {
        const RETRIED: Planned = Planned {
            sql: formatcp!(
                "UPDATE deliveries d SET attempts = d.attempts + 1, next_attempt_at = k.next, \
                 lease_owner = NULL, lease_until = NULL, updated_at = k.at \
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) \
                 AS k(msg_id, endpoint_id, next, at, owner) \
                 WHERE d.msg_id = k.msg_id AND d.endpoint_id = k.endpoint_id \
                 AND d.status = {PENDING} AND (d.lease_owner IS NULL OR d.lease_owner = k.owner)"
            ),
            types: &[TEXTS, TEXTS, INTS, INTS, TEXTS],
        };
        pipeline.push_planned(
            &RETRIED,
            vec![
                param(retried.msgs),
                param(retried.endpoints),
                param(retried.next),
                param(retried.at),
                param(retried.owners),
            ],
        );
    }
    if !failed.msgs.is_empty() {
        const FAILED: Planned = Planned {
            sql: formatcp!(
                "UPDATE deliveries d SET status = {FAIL}, attempts = d.attempts + 1, \
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, updated_at = k.at \
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) \
                 AS k(msg_id, endpoint_id, at, owner) \
                 WHERE d.msg_id = k.msg_id AND d.endpoint_id = k.endpoint_id \
                 AND d.status = {PENDING} AND (d.lease_owner IS NULL OR d.lease_owner = k.owner)"
            ),
            types: &[TEXTS, TEXTS, INTS, TEXTS],
        };
        pipeline.push_planned(
            &FAILED,
            vec![
                param(failed.msgs),
                param(failed.endpoints),
                param(failed.at),
                param(failed.owners),
            ],
        );
    }
    Ok(())
}

/// A record's delivery update alone (see `crate::engine::delivery_statements`).
fn update_delivery(pipeline: &mut Pipeline, record: &AttemptRecord) -> Result<()> {
    crate::engine::delivery_statements(record, push_to(pipeline))
}

/// Runs shared statements by adding them to the pipeline.
fn push_to(
    pipeline: &mut Pipeline,
) -> impl FnMut(&'static str, &[crate::db::Param<'_>]) -> Result<()> + '_ {
    |sql, params| {
        pipeline.push(sql, super::db::owned(params));
        Ok(())
    }
}

pub(crate) async fn next_due_at(
    c: &impl Connection,
    after: OffsetDateTime,
) -> Result<Option<OffsetDateTime>> {
    // Of unordered deliveries, and of the heads of ordered endpoints' lines (the rest of a line
    // waits for its head, not for the clock).
    let sql = formatcp!(
        "SELECT LEAST( \
           (SELECT next_attempt_at FROM deliveries WHERE status = {PENDING} AND seq IS NULL \
            AND lease_owner IS NULL AND next_attempt_at > $1 ORDER BY next_attempt_at LIMIT 1), \
           (SELECT MIN(d.next_attempt_at) FROM {LINE_HEADS}, \
            LATERAL (SELECT d.next_attempt_at FROM deliveries d \
                     WHERE d.msg_id = h.msg_id AND d.endpoint_id = en.id \
                     AND d.lease_owner IS NULL AND d.next_attempt_at > $1 OFFSET 0) d))"
    );
    let rows = query(c, sql, &[&ms(after)]).await?;
    let next: Option<i64> = rows.first().map(|row| get(row, 0)).transpose()?.flatten();
    Ok(next.map(from_unix_ms))
}
