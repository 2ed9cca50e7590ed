//! What the PostgreSQL store has beyond the `Store` contract: opening from start-up code that
//! cannot await, and the LISTEN connection that survives the server dropping it.

use webhookd_store::Store;
use webhookd_store::postgres::PostgresStore;

use crate::support::{app_with_endpoints, lease, message_at, minutes, postgres_database, woken};

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
            assert_eq!(PostgresStore::migrate(&url).await.unwrap(), 11);
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
