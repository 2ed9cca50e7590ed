//! What the PostgreSQL store has beyond the `Store` contract: opening from start-up code that
//! cannot await, the LISTEN connection that survives the server dropping it, group commit
//! across nodes, plans that stay lookups as tables grow, and TLS as the URL asks for it.

use webhookd_store::Store;
use webhookd_store::postgres::PostgresStore;

use crate::support::{
    app_with_endpoints, attempt_record, lease, message_at, minutes, postgres_database, woken,
};

/// The binary opens PostgreSQL with `PostgresStore::open`, on whatever runtime runs it: here
/// a single-threaded one, as the binary's in-process tests use. Migrating again finds
/// nothing to do.
#[tokio::test]
async fn opens_from_blocking_start_up_code() {
    let Some(database) = postgres_database().await else {
        return;
    };
    let url = database.url.clone();
    database
        .run(async move {
            let store = PostgresStore::open(&url).expect("PostgreSQL store opens");
            assert_eq!(store.count_tokens().await.unwrap(), 0);
            assert!(store.due_notifications().is_some());
            // The schema version is the number of the newest migration.
            assert_eq!(PostgresStore::migrate(&url).await.unwrap(), 13);
        })
        .await;
}

/// The server ends the LISTEN connection (a restart, a failover, an administrator): the store
/// reconnects, wakes its scheduler for what it may have missed, and hears signals again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_reconnects_when_the_server_drops_it() {
    let Some(database) = postgres_database().await else {
        return;
    };
    let url = database.url.clone();
    database
        .run(async move {
            let store = PostgresStore::connect(&url)
                .await
                .expect("PostgreSQL store connects");
            let due = store
                .due_notifications()
                .expect("PostgreSQL signals due work");
            woken(&due, "the listener started").await;

            let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("a second connection");
            tokio::spawn(connection);
            let ended = admin
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND query LIKE 'LISTEN%'",
                    &[],
                )
                .await
                .unwrap();
            assert_eq!(ended.len(), 1, "one LISTEN connection");
            woken(&due, "the listener reconnected").await;

            let (app, hooks) = app_with_endpoints(&store, 1).await;
            let t = webhookd_core::time::now();
            let msg = message_at(&app.id, "a", t);
            store
                .create_message(&msg, Some(&lease("node-a", t + minutes(1))), None)
                .await
                .unwrap();
            store
                .release_leases("node-a", &[(msg.id.clone(), hooks[0].id.clone())])
                .await
                .unwrap();
            woken(&due, "release_leases, once reconnected").await;
        })
        .await;
}

/// PostgreSQL text cannot hold a NUL character: storing one is invalid input (a 422 at the
/// API), never an internal error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nul_character_is_invalid_input() {
    let Some(database) = postgres_database().await else {
        return;
    };
    let url = database.url.clone();
    database
        .run(async move {
            let store = PostgresStore::connect(&url)
                .await
                .expect("PostgreSQL store connects");
            let mut app = crate::support::application(None);
            app.name = "nul\u{0}name".into();
            let error = store.create_application(&app, None).await.unwrap_err();
            assert!(
                matches!(error, webhookd_store::StoreError::Invalid(_)),
                "{error:?}"
            );
        })
        .await;
}

/// A batch of results updates its deliveries by key however large the table has grown since
/// the node's connection first recorded results. A statement prepared while the table was
/// small keeps the plan it was given then (nothing re-plans it while the table has no
/// statistics), and that plan read every delivery for each batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_update_their_deliveries_by_key_as_the_table_grows() {
    use webhookd_store::DeliveryUpdate;

    let Some(database) = postgres_database().await else {
        return;
    };
    let url = database.url.clone();
    database
        .run(async move {
            // One connection: every batch runs where the earlier ones left their plans.
            let store = PostgresStore::connect_with(&url, 1)
                .await
                .expect("PostgreSQL store connects");
            let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("a second connection");
            tokio::spawn(connection);
            let (app, hooks) = app_with_endpoints(&store, 1).await;
            let hook = &hooks[0];
            let record_batch = || async {
                let t = webhookd_core::time::now();
                let mut records = Vec::new();
                for _ in 0..20 {
                    let msg = message_at(&app.id, "a", t);
                    store
                        .create_message(&msg, Some(&lease("node", t + minutes(1))), None)
                        .await
                        .expect("message stored");
                    records.push(attempt_record(
                        &app.id,
                        &msg.id,
                        &hook.id,
                        DeliveryUpdate::Delivered,
                        "node",
                    ));
                }
                store.record_attempts(&records).await.expect("results recorded");
            };
            // While the table is small: more batches than it takes for a plan to be kept.
            for _ in 0..8 {
                record_batch().await;
            }
            // The table grows (other nodes' work, say), delivered already.
            let grown = 20_000;
            admin
                .execute(
                    "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
                     created_at, updated_at) \
                     SELECT 'msg_grown' || g, $1, $2, 0, 1, 0, 0 FROM generate_series(1, $3::bigint) g",
                    &[&hook.id.as_str(), &app.id.as_str(), &grown],
                )
                .await
                .expect("the table grows");
            // The server's counts of one table: rows read by scans, rows updated.
            let counts = || async {
                let row = admin
                    .query_one(
                        "SELECT seq_tup_read, n_tup_upd FROM pg_stat_user_tables \
                         WHERE relname = 'deliveries'",
                        &[],
                    )
                    .await
                    .expect("table statistics");
                (row.get::<_, i64>(0), row.get::<_, i64>(1))
            };
            // A backend reports its counts when idle, within seconds: wait for the last batch.
            let settled = |updated: i64| async move {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
                loop {
                    let now = counts().await;
                    if now.1 >= updated {
                        return now;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the server never counted {updated} updated deliveries: {now:?}"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            };
            let (read_before, _) = settled(8 * 20).await;
            record_batch().await;
            let (read_after, _) = settled(9 * 20).await;
            assert!(
                read_after - read_before < grown,
                "recording 20 results scanned {} deliveries",
                read_after - read_before
            );
        })
        .await;
}

/// Messages that arrive together are committed together (group commit), yet each request
/// keeps its own outcome: a taken `eventId` or idempotency key fails that request alone, the
/// others are stored with their deliveries. Two stores on one database stand for two nodes,
/// so the conflicts also cross nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_that_arrive_together_keep_their_own_outcomes() {
    use std::sync::Arc;
    use webhookd_store::{IdempotentResponse, StoreError};

    let Some(database) = postgres_database().await else {
        return;
    };
    let url = database.url.clone();
    database
        .run(async move {
            let nodes = [
                Arc::new(PostgresStore::connect(&url).await.expect("node A connects")),
                Arc::new(PostgresStore::connect(&url).await.expect("node B connects")),
            ];
            let (app, hooks) = app_with_endpoints(&*nodes[0], 2).await;
            /// What a request carries that may conflict.
            #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
            enum Kind {
                EventId(usize),
                Idempotency(usize),
                Plain,
            }
            let kinds: Vec<Kind> = (0..40)
                .map(|i| Kind::EventId(i / 2))
                .chain((0..20).map(|i| Kind::Idempotency(i / 2)))
                .chain((0..60).map(|_| Kind::Plain))
                .collect();
            let start = Arc::new(tokio::sync::Barrier::new(kinds.len()));
            let mut tasks = Vec::new();
            for (i, kind) in kinds.iter().copied().enumerate() {
                // Some pairs on one node (one batch), some across the two.
                let store = Arc::clone(&nodes[(i / 3) % 2]);
                let start = Arc::clone(&start);
                let t = webhookd_core::time::now();
                let mut msg = message_at(&app.id, "user.created", t);
                let mut idempotency = None;
                match kind {
                    Kind::EventId(n) => msg.event_id = Some(format!("evt-{n}")),
                    Kind::Idempotency(n) => {
                        idempotency = Some(IdempotentResponse {
                            key_hash: format!("key-{n}"),
                            status: 202,
                            body: br#"{"ok":true}"#.to_vec(),
                            created_at: t,
                        });
                    }
                    Kind::Plain => {}
                }
                // Half the requests come from a delivering node (claimed at insert).
                let claim = (i % 4 < 2).then(|| lease("node", t + minutes(1)));
                tasks.push(tokio::spawn(async move {
                    start.wait().await;
                    let result = store
                        .create_message(&msg, claim.as_ref(), idempotency.as_ref())
                        .await;
                    (kind, msg, result)
                }));
            }
            let mut won = std::collections::HashMap::new();
            for task in tasks {
                let (kind, msg, result) = task.await.expect("the request task runs");
                let stored = nodes[1]
                    .get_message(&app.id, &msg.id.clone().into())
                    .await
                    .unwrap();
                match result {
                    Ok(endpoints) => {
                        let mut expected: Vec<_> = hooks.iter().map(|h| h.id.clone()).collect();
                        expected.sort();
                        assert_eq!(endpoints, expected, "{kind:?}");
                        assert!(stored.is_some(), "{kind:?}: answered but not stored");
                        for hook in &hooks {
                            let delivery = nodes[0].get_delivery(&msg.id, &hook.id).await.unwrap();
                            assert!(delivery.is_some(), "{kind:?}: a delivery is missing");
                        }
                        *won.entry(kind).or_insert(0) += 1;
                    }
                    Err(StoreError::Conflict(_)) => {
                        assert_ne!(kind, Kind::Plain, "a plain message conflicted");
                        assert!(stored.is_none(), "{kind:?}: refused but stored");
                    }
                    Err(error) => panic!("{kind:?}: {error:?}"),
                }
            }
            for (kind, wins) in &won {
                let expected = if *kind == Kind::Plain { 60 } else { 1 };
                assert_eq!(*wins, expected, "{kind:?}");
            }
            assert_eq!(
                won.len(),
                20 + 10 + 1,
                "every eventId and key won once: {won:?}"
            );
        })
        .await;
}

/// An idempotency key whose record has expired is free again, also for a request that
/// arrives with others: its message is stored and the record replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_idempotency_key_is_free_again_in_a_group_commit() {
    use std::sync::Arc;
    use webhookd_store::{IDEMPOTENCY_WINDOW, IdempotentResponse};

    let Some(database) = postgres_database().await else {
        return;
    };
    let url = database.url.clone();
    database
        .run(async move {
            let store = Arc::new(
                PostgresStore::connect(&url)
                    .await
                    .expect("the store connects"),
            );
            let (app, _) = app_with_endpoints(&*store, 1).await;
            let record = |created_at| IdempotentResponse {
                key_hash: "expired-key".into(),
                status: 202,
                body: br#"{"ok":true}"#.to_vec(),
                created_at,
            };
            let long_ago = webhookd_core::time::now() - IDEMPOTENCY_WINDOW - minutes(1);
            let old = message_at(&app.id, "user.created", long_ago);
            store
                .create_message(&old, None, Some(&record(long_ago)))
                .await
                .expect("the first use of the key");
            let count = 32;
            let start = Arc::new(tokio::sync::Barrier::new(count));
            let mut tasks = Vec::new();
            for i in 0..count {
                let (store, start) = (Arc::clone(&store), Arc::clone(&start));
                let t = webhookd_core::time::now();
                let msg = message_at(&app.id, "user.created", t);
                let key = (i == 0).then(|| record(t));
                tasks.push(tokio::spawn(async move {
                    start.wait().await;
                    store.create_message(&msg, None, key.as_ref()).await
                }));
            }
            for task in tasks {
                task.await
                    .expect("the request task runs")
                    .expect("every message is stored");
            }
            // The record is the new request's: recorded within the window.
            let replaced = store
                .get_idempotent_response("expired-key", long_ago + minutes(1))
                .await
                .unwrap();
            assert!(replaced.is_some(), "the expired record was not replaced");
        })
        .await;
}

/// Messages committed together (one statement for the whole batch) are stored as each would
/// be alone: their own channels and tags, read back exactly (quotes, commas, braces and
/// backslashes included) and found by the list's label filters, and deliveries for exactly
/// the endpoints whose event types, channels and payload filter accept them; a disabled or
/// polling endpoint gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn messages_committed_together_fan_out_as_each_alone() {
    use std::sync::Arc;
    use webhookd_core::model::POLLING_URL;
    use webhookd_store::{MessageFilter, PageRequest};

    use crate::support::{application, endpoint};

    let Some(database) = postgres_database().await else {
        return;
    };
    let url = database.url.clone();
    database
        .run(async move {
            let store = Arc::new(
                PostgresStore::connect(&url)
                    .await
                    .expect("the store connects"),
            );
            let app = application(None);
            store.create_application(&app, None).await.unwrap();
            let every = endpoint(&app.id, None);
            let mut typed = endpoint(&app.id, None);
            typed.event_types = vec!["a.created".into()];
            let mut channeled = endpoint(&app.id, None);
            channeled.channels = vec![r#"x"y"#.into(), "p,q".into()];
            let mut filtered = endpoint(&app.id, None);
            filtered.payload_filter = Some("payload.even == true".into());
            let mut disabled = endpoint(&app.id, None);
            disabled.disabled = true;
            let mut polling = endpoint(&app.id, None);
            polling.url = POLLING_URL.into();
            let hooks = [&every, &typed, &channeled, &filtered, &disabled, &polling];
            for hook in hooks {
                store.create_endpoint(hook, None).await.unwrap();
            }
            let channels = |i: usize| -> Vec<String> {
                match i % 3 {
                    0 => vec![r#"x"y"#.into()],
                    1 => vec!["p,q".into(), r"back\slash".into(), "{brace}".into()],
                    _ => Vec::new(),
                }
            };
            let count = 64;
            let start = Arc::new(tokio::sync::Barrier::new(count));
            let mut tasks = Vec::new();
            for i in 0..count {
                let (store, start) = (Arc::clone(&store), Arc::clone(&start));
                let t = webhookd_core::time::now();
                let event_type = if i % 2 == 1 { "a.created" } else { "b.created" };
                let mut msg = message_at(&app.id, event_type, t);
                msg.payload = format!(r#"{{"n":{i},"even":{}}}"#, i % 2 == 0)
                    .into_bytes()
                    .into();
                msg.channels = channels(i);
                msg.tags = vec![format!("t{}", i % 4), r#"q"uote"#.into()];
                let claim = (i % 4 < 2).then(|| lease("node", t + minutes(1)));
                tasks.push(tokio::spawn(async move {
                    start.wait().await;
                    let fanned = store.create_message(&msg, claim.as_ref(), None).await;
                    (i, msg, fanned)
                }));
            }
            for task in tasks {
                let (i, msg, fanned) = task.await.expect("the request task runs");
                let mut expected = vec![every.id.clone()];
                if i % 2 == 1 {
                    expected.push(typed.id.clone());
                }
                if i % 3 != 2 {
                    expected.push(channeled.id.clone());
                }
                if i % 2 == 0 {
                    expected.push(filtered.id.clone());
                }
                expected.sort();
                assert_eq!(fanned.unwrap(), expected, "message {i}");
                let stored = store
                    .get_message(&app.id, &msg.id.clone().into())
                    .await
                    .unwrap()
                    .expect("stored");
                assert_eq!(stored.channels, msg.channels, "message {i}");
                assert_eq!(stored.tags, msg.tags, "message {i}");
                for hook in hooks {
                    let delivery = store.get_delivery(&msg.id, &hook.id).await.unwrap();
                    assert_eq!(
                        delivery.is_some(),
                        expected.contains(&hook.id),
                        "message {i}, endpoint {}",
                        hook.url
                    );
                }
            }
            let listed = |channel: Option<&str>, tag: Option<&str>| {
                let filter = MessageFilter {
                    channel: channel.map(str::to_owned),
                    tag: tag.map(str::to_owned),
                    ..MessageFilter::default()
                };
                let store = Arc::clone(&store);
                let app = app.id.clone();
                async move {
                    let page = PageRequest {
                        limit: 100,
                        ..PageRequest::default()
                    };
                    store
                        .list_messages(&app, &filter, &page)
                        .await
                        .unwrap()
                        .items
                        .len()
                }
            };
            assert_eq!(listed(None, Some(r#"q"uote"#)).await, count);
            assert_eq!(listed(None, Some("t1")).await, count / 4);
            assert_eq!(listed(Some(r"back\slash"), None).await, 21);
            assert_eq!(listed(Some(r#"x"y"#), None).await, 22);
        })
        .await;
}

/// The tests of TLS need a server with TLS on, and the CA that signed its certificate (for
/// 127.0.0.1) in `WEBHOOKD_TEST_DATABASE_CA`; `.ci/run` sets both up. Without them the test
/// says so and passes, except under `CI=true`.
const CA_ENV: &str = "WEBHOOKD_TEST_DATABASE_CA";

/// Whether the store's connections (named `application`) to the test database use TLS.
async fn uses_tls(url: &str, application: &str) -> bool {
    let (admin, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("an admin connection");
    tokio::spawn(connection);
    let row = admin
        .query_one(
            "SELECT count(*), bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a \
             USING (pid) WHERE a.datname = current_database() AND a.application_name = $1",
            &[&application],
        )
        .await
        .unwrap();
    let connections: i64 = row.get(0);
    assert!(connections > 0, "no connection named {application}");
    row.get::<_, Option<bool>>(1).unwrap_or(false)
}

/// `sslmode` and `sslrootcert` in the URL are honoured against the real server: `disable`
/// talks in the clear, `require` encrypts, `verify-ca` and `verify-full` accept the server's
/// certificate with its CA and refuse it with another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_with_tls_as_the_url_asks() {
    let Some(database) = postgres_database().await else {
        return;
    };
    let in_ci = std::env::var("CI").is_ok_and(|value| value == "true");
    let url = database.url.clone();
    database
        .run(async move {
            let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("an admin connection");
            tokio::spawn(connection);
            let ssl: String = admin.query_one("SHOW ssl", &[]).await.unwrap().get(0);
            if ssl != "on" {
                assert!(
                    !in_ci,
                    "the PostgreSQL server must have ssl=on under CI=true"
                );
                eprintln!("skipped: the PostgreSQL server has ssl={ssl}");
                return;
            }
            let with = |query: &str| format!("{url}?{query}");
            for (mode, encrypted) in [("disable", false), ("prefer", true), ("require", true)] {
                let name = format!("webhookd-tls-{mode}");
                let store = PostgresStore::connect(&with(&format!(
                    "sslmode={mode}&application_name={name}"
                )))
                .await
                .unwrap_or_else(|error| panic!("sslmode={mode}: {error:?}"));
                store.ping().await.expect("the store answers");
                assert_eq!(uses_tls(&url, &name).await, encrypted, "sslmode={mode}");
            }

            let ca = match std::env::var(CA_ENV) {
                Ok(ca) => ca,
                Err(_) => {
                    assert!(!in_ci, "{CA_ENV} must name the server's CA under CI=true");
                    eprintln!("skipped: verify-ca and verify-full run when {CA_ENV} is set");
                    return;
                }
            };
            for mode in ["verify-ca", "verify-full"] {
                let name = format!("webhookd-tls-{mode}");
                let store = PostgresStore::connect(&with(&format!(
                    "sslmode={mode}&sslrootcert={ca}&application_name={name}"
                )))
                .await
                .unwrap_or_else(|error| panic!("sslmode={mode} with {ca}: {error:?}"));
                store.ping().await.expect("the store answers");
                assert!(uses_tls(&url, &name).await, "sslmode={mode}");
            }

            // A CA that did not sign the server's certificate.
            let other = rcgen::CertificateParams::new(Vec::<String>::new())
                .and_then(|mut params| {
                    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
                    params.self_signed(&rcgen::KeyPair::generate()?)
                })
                .expect("a CA certificate");
            let directory = tempfile::tempdir().unwrap();
            let other_ca = directory.path().join("other-ca.pem");
            std::fs::write(&other_ca, other.pem()).unwrap();
            for mode in ["verify-ca", "verify-full", "require"] {
                let refused = PostgresStore::connect(&with(&format!(
                    "sslmode={mode}&sslrootcert={}",
                    other_ca.display()
                )))
                .await;
                assert!(refused.is_err(), "sslmode={mode} trusted another CA");
            }
        })
        .await;
}

/// Two messages stored at once: the one whose transaction began first commits last. A reader
/// between the two commits must not step past it: the stream stops before the transaction
/// still open, and reads both, in transaction order, once it has committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_committed_late_is_not_skipped() {
    use webhookd_core::time::now;
    use webhookd_store::PollStore;

    let Some(database) = postgres_database().await else {
        return;
    };
    let url = database.url.clone();
    database
        .run(async move {
            let store = PostgresStore::connect(&url)
                .await
                .expect("PostgreSQL store opens");
            let app = crate::support::application(Some("late-app"));
            store.create_application(&app, None).await.unwrap();
            let since = now() - minutes(1);
            let start = store.stream_start(&app.id, since).await.unwrap();

            // The slow writer's transaction begins (and takes its id) first.
            let (mut slow, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let slow = slow.transaction().await.unwrap();
            slow.execute("SELECT pg_current_xact_id()", &[])
                .await
                .unwrap();
            let late = message_at(&app.id, "user.late", now());

            let quick = message_at(&app.id, "user.quick", now());
            store.create_message(&quick, None, None).await.unwrap();
            let read = store.read_stream(&app.id, since, &start, 10).await.unwrap();
            assert!(
                read.is_empty(),
                "held back by the open transaction: {read:?}"
            );

            slow.execute(
                "INSERT INTO messages (id, app_id, event_type, event_id, payload, channels, \
                 tags, created_at, deliver_at, retain_payload_until) \
                 VALUES ($1, $2, $3, NULL, $4, '{}', '{}', $5, NULL, NULL)",
                &[
                    &late.id.as_str(),
                    &app.id.as_str(),
                    &late.event_type,
                    &late.payload.as_ref(),
                    &webhookd_core::time::to_unix_ms(late.created_at),
                ],
            )
            .await
            .unwrap();
            slow.commit().await.unwrap();
            // Transactions of other clients of the server hold the stream back too, briefly.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let read = loop {
                let read: Vec<_> = store
                    .read_stream(&app.id, since, &start, 10)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(_, message)| message.id)
                    .collect();
                if read.len() == 2 || std::time::Instant::now() > deadline {
                    break read;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            };
            assert_eq!(read, vec![late.id, quick.id]);
        })
        .await;
}
