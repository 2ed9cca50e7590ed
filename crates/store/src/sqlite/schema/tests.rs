//! The schema on fresh databases and on databases made before refinery kept it, which counted
//! their migrations in `PRAGMA user_version`.

use std::path::Path;

use refinery::Target;
use rusqlite::{Connection, OpenFlags};

use super::migrations;
use crate::sqlite::{SqliteStore, open_connection};

fn latest() -> usize {
    migrations::runner().get_migrations().len()
}

/// Makes the database the code before refinery made after its first `applied` migrations:
/// their SQL applied in one transaction, and `user_version` set to their number.
fn old_database(path: &Path, applied: usize) -> Connection {
    let mut connection = open_connection(path, OpenFlags::default()).unwrap();
    let mut listed = migrations::runner().get_migrations().clone();
    listed.sort();
    let transaction = connection.transaction().unwrap();
    for migration in &listed[..applied] {
        transaction
            .execute_batch(migration.sql().expect("an embedded migration has its SQL"))
            .unwrap();
    }
    transaction
        .pragma_update(None, "user_version", applied)
        .unwrap();
    transaction.commit().unwrap();
    connection
}

/// An application and a message of it, in the columns of the first migration.
fn store_some_data(connection: &Connection) {
    connection
        .execute_batch(
            "INSERT INTO applications (id, uid, name, metadata, created_at, updated_at)
                 VALUES ('app_1', 'shop', 'Shop', '{}', 1, 1);
             INSERT INTO messages (id, app_id, event_type, payload, channels, tags, created_at)
                 VALUES ('msg_1', 'app_1', 'order.paid', X'7B7D', '[\"eu\"]', '[\"vip\"]', 2);",
        )
        .unwrap();
}

/// Everything a migration run could change: the schema, refinery's history (with the times
/// it recorded), `user_version` and the stored rows.
#[derive(Debug, PartialEq)]
struct Snapshot {
    schema: Vec<(String, String, Option<String>)>,
    history: Vec<(i32, String, String, String)>,
    user_version: i32,
    rows: Vec<String>,
}

fn snapshot(path: &Path) -> Snapshot {
    let connection = Connection::open(path).unwrap();
    let strings = |sql: &str| -> Vec<String> {
        let mut statement = connection.prepare(sql).unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let mut statement = connection
        .prepare(
            "SELECT type, name, sql FROM sqlite_master \
             WHERE name != 'refinery_schema_history' ORDER BY type, name",
        )
        .unwrap();
    let schema = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let history = if super::recorded(&connection).is_ok_and(|recorded| recorded) {
        let mut statement = connection
            .prepare(
                "SELECT version, name, applied_on, checksum FROM refinery_schema_history \
                 ORDER BY version",
            )
            .unwrap();
        statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    } else {
        Vec::new()
    };
    let user_version = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    let mut rows = strings("SELECT json_array(id, uid, name) FROM applications ORDER BY id");
    rows.extend(strings(
        "SELECT json_array(id, app_id, hex(payload), tags, channels) FROM messages ORDER BY id",
    ));
    Snapshot {
        schema,
        history,
        user_version,
        rows,
    }
}

/// A fresh database's schema, made by the current code.
fn fresh_schema() -> Vec<(String, String, Option<String>)> {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("fresh.db");
    drop(SqliteStore::open(&path).unwrap());
    snapshot(&path).schema
}

#[test]
fn a_fresh_database_reaches_the_latest_version() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("webhookd.db");
    drop(SqliteStore::open(&path).unwrap());
    let made = snapshot(&path);
    let versions: Vec<_> = made.history.iter().map(|entry| entry.0).collect();
    let expected: Vec<_> = (1..=latest()).map(|n| n as i32).collect();
    assert_eq!(versions, expected);
    assert_eq!(
        usize::try_from(made.user_version).ok(),
        Some(latest()),
        "a release that reads only user_version sees a newer database"
    );

    assert_eq!(SqliteStore::migrate(&path).unwrap(), latest());
    assert_eq!(snapshot(&path), made, "a second run changes nothing");
}

/// For every version an old database can be at: opening it records what it has, applies the
/// rest, keeps its rows, and ends with the schema of a fresh database. A second open changes
/// nothing.
#[test]
fn an_old_database_is_adopted_then_migrated() {
    let fresh = fresh_schema();
    for applied in 1..=latest() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("webhookd.db");
        store_some_data(&old_database(&path, applied));
        let before = snapshot(&path);

        drop(SqliteStore::open(&path).unwrap());
        let opened = snapshot(&path);
        assert_eq!(opened.schema, fresh, "after {applied} old migrations");
        let recorded: Vec<_> = opened
            .history
            .iter()
            .map(|(version, name, _, _)| (*version, name.clone()))
            .collect();
        let mut listed: Vec<_> = migrations::runner()
            .get_migrations()
            .iter()
            .map(|migration| (migration.version(), migration.name().to_owned()))
            .collect();
        listed.sort();
        assert_eq!(recorded, listed, "after {applied} old migrations");
        assert_eq!(opened.rows, before.rows, "after {applied} old migrations");

        let connection = Connection::open(&path).unwrap();
        let (stream_seq, tags): (Option<i64>, i64) = connection
            .query_row(
                "SELECT stream_seq, (SELECT count(*) FROM message_tags WHERE tag = 'vip') \
                 FROM messages",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        // Rows stored before a migration that fills a column or table of them get theirs.
        if applied < 11 {
            assert!(stream_seq.is_some(), "after {applied} old migrations");
        }
        if applied < 8 {
            assert_eq!(tags, 1, "after {applied} old migrations");
        }
        drop(connection);

        drop(SqliteStore::open(&path).unwrap());
        assert_eq!(snapshot(&path), opened, "opened again after {applied}");
        assert_eq!(SqliteStore::migrate(&path).unwrap(), latest());
        assert_eq!(snapshot(&path), opened, "migrated again after {applied}");
    }
}

/// An adoption that created refinery's history and stopped before recording anything in it is
/// done again at the next open.
#[test]
fn an_empty_history_is_adopted_again() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("webhookd.db");
    let mut connection = old_database(&path, 5);
    migrations::runner()
        .set_target(Target::FakeVersion(0))
        .run(&mut connection)
        .unwrap();
    drop(connection);
    assert!(snapshot(&path).history.is_empty());

    assert_eq!(SqliteStore::migrate(&path).unwrap(), latest());
    assert_eq!(snapshot(&path).schema, fresh_schema());
}

/// A migration beyond this release's, counted the old way or recorded in refinery's history,
/// was applied by a newer release: the database is refused, and left as it is.
#[test]
fn a_database_from_a_newer_release_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let counted = directory.path().join("counted.db");
    let connection = old_database(&counted, latest());
    connection
        .pragma_update(None, "user_version", latest() + 1)
        .unwrap();
    drop(connection);
    let before = snapshot(&counted);
    assert!(SqliteStore::migrate(&counted).is_err());
    assert_eq!(snapshot(&counted), before);

    let recorded = directory.path().join("recorded.db");
    assert_eq!(SqliteStore::migrate(&recorded).unwrap(), latest());
    Connection::open(&recorded)
        .unwrap()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES (?1, 'next', '2030-01-01T00:00:00Z', '1')",
            [latest() + 1],
        )
        .unwrap();
    let before = snapshot(&recorded);
    assert!(SqliteStore::migrate(&recorded).is_err());
    assert_eq!(snapshot(&recorded), before);
}
