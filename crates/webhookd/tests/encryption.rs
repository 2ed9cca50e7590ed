//! Endpoint secrets at rest: sealed with the first key of `WEBHOOKD_ENCRYPTION_KEY`, never
//! written in plain, refused at start when no configured key opens them, and moved to a new
//! key by `webhookd secrets reencrypt`, which leaves no plain copy (of secrets, sensitive
//! headers or stored answers) in the database files; the files are private to their owner.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use webhookd::config::{ConfigArgs, load_from};
use webhookd_core::model::Endpoint;
use webhookd_core::signing::Secret;
use webhookd_core::{AppId, EndpointId};

const KEY_A: &str = "q6Hx7nVYJ1c0mJpM4Jg5bJ8Gz0s3kQ2fWc9tY1r8aXE=";
const KEY_B: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn config(database: &str, key: Option<&str>) -> webhookd::config::Config {
    let mut settings = HashMap::from([("WEBHOOKD_DATABASE_URL", database.to_owned())]);
    if let Some(key) = key {
        settings.insert("WEBHOOKD_ENCRYPTION_KEY", key.to_owned());
    }
    load_from(&ConfigArgs::default(), &|name| settings.get(name).cloned()).unwrap()
}

fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("webhookd.db")
        {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_sealed_and_keys_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("webhookd.db").display());
    let secret = Secret::generate();
    let endpoint_id = EndpointId::new();
    let app_id = AppId::new();
    {
        let store = webhookd::run::open_store(&config(&database, Some(KEY_A))).unwrap();
        let at = webhookd_core::time::now();
        let app = webhookd_core::model::Application {
            id: app_id.clone(),
            uid: Some("a".into()),
            name: "a".into(),
            metadata: Default::default(),
            throttle_rate: None,
            created_at: at,
            updated_at: at,
        };
        store.create_application(&app, None).await.unwrap();
        let endpoint = Endpoint {
            id: endpoint_id.clone(),
            secret: secret.clone(),
            ..Endpoint::new(app_id.clone(), "http://127.0.0.1:9/", at)
        };
        store.create_endpoint(&endpoint, None).await.unwrap();
        let read = store
            .get_endpoint(&app_id, &endpoint_id.clone().into())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.secret, secret);
    }
    let raw = database_bytes(dir.path());
    assert!(
        !contains(&raw, &secret.expose()[6..]),
        "the secret is stored in plain"
    );

    // Without the key that sealed it, the server refuses to start and says why.
    let store = webhookd::run::open_store(&config(&database, Some(KEY_B))).unwrap();
    let refused = webhookd::commands::secrets::check_all_open(store.as_ref())
        .await
        .unwrap_err();
    assert!(
        format!("{refused:#}").contains("not in WEBHOOKD_ENCRYPTION_KEY"),
        "{refused:#}"
    );
    drop(store);

    // Rotation: the new key first, the old one still listed, then re-seal.
    let reencrypt = Command::new(env!("CARGO_BIN_EXE_webhookd"))
        .args(["secrets", "reencrypt"])
        .env("WEBHOOKD_DATABASE_URL", &database)
        .env("WEBHOOKD_ENCRYPTION_KEY", format!("{KEY_B},{KEY_A}"))
        .output()
        .unwrap();
    assert!(
        reencrypt.status.success(),
        "{}",
        String::from_utf8_lossy(&reencrypt.stderr)
    );
    assert!(String::from_utf8_lossy(&reencrypt.stdout).contains("1 endpoints"));

    let store = webhookd::run::open_store(&config(&database, Some(KEY_B))).unwrap();
    webhookd::commands::secrets::check_all_open(store.as_ref())
        .await
        .unwrap();
    let read = store
        .get_endpoint(&app_id, &endpoint_id.clone().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.secret, secret);
    drop(store);

    // A malformed key is a clear configuration error.
    let bad = webhookd::run::open_store(&config(&database, Some("not-base64!")))
        .map(drop)
        .unwrap_err();
    assert!(format!("{bad:#}").contains("encryption_key"), "{bad:#}");
}

fn endpoint_with(app_id: &AppId, secret: &Secret, authorization: &str) -> Endpoint {
    let at = webhookd_core::time::now();
    Endpoint {
        headers: [
            ("authorization".to_owned(), authorization.to_owned()),
            ("x-tenant".to_owned(), "acme".to_owned()),
        ]
        .into(),
        secret: secret.clone(),
        ..Endpoint::new(app_id.clone(), "http://127.0.0.1:9/", at)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reencrypt_leaves_no_plain_secret_or_credential_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("webhookd.db").display());
    let secret = Secret::generate();
    let credential = "Bearer sk-live-0123456789-credential";
    let app_id = AppId::new();
    let endpoint = endpoint_with(&app_id, &secret, credential);
    {
        // Stored in plain, before a key is configured; an idempotent answer holds the secret.
        let store = webhookd::run::open_store(&config(&database, None)).unwrap();
        let at = webhookd_core::time::now();
        let app = webhookd_core::model::Application {
            id: app_id.clone(),
            uid: Some("a".into()),
            name: "a".into(),
            metadata: Default::default(),
            throttle_rate: None,
            created_at: at,
            updated_at: at,
        };
        store.create_application(&app, None).await.unwrap();
        let answer = webhookd_store::IdempotentResponse {
            key_hash: "key".into(),
            status: 201,
            body: format!(r#"{{"secret":"{}"}}"#, secret.expose()).into_bytes(),
            created_at: at,
        };
        store
            .create_endpoint(&endpoint, Some(&answer))
            .await
            .unwrap();
    }
    let raw = database_bytes(dir.path());
    assert!(
        contains(&raw, &secret.expose()[6..]),
        "stored in plain first"
    );
    assert!(contains(&raw, credential), "stored in plain first");

    // A key is configured: what is still plain is counted (the start-up warning).
    let store = webhookd::run::open_store(&config(&database, Some(KEY_A))).unwrap();
    assert_eq!(store.count_unsealed_endpoints().await.unwrap(), 1);
    drop(store);

    let reencrypt = Command::new(env!("CARGO_BIN_EXE_webhookd"))
        .args(["secrets", "reencrypt"])
        .env("WEBHOOKD_DATABASE_URL", &database)
        .env("WEBHOOKD_ENCRYPTION_KEY", KEY_A)
        .output()
        .unwrap();
    assert!(
        reencrypt.status.success(),
        "{}",
        String::from_utf8_lossy(&reencrypt.stderr)
    );
    let raw = database_bytes(dir.path());
    assert!(
        !contains(&raw, &secret.expose()[6..]),
        "the old plain secret is left in the database files"
    );
    assert!(
        !contains(&raw, credential),
        "the old plain header is left in the database files"
    );
    assert!(
        contains(&raw, "acme"),
        "headers that are not sensitive stay readable"
    );

    let store = webhookd::run::open_store(&config(&database, Some(KEY_A))).unwrap();
    assert_eq!(store.count_unsealed_endpoints().await.unwrap(), 0);
    let read = store
        .get_endpoint(&app_id, &endpoint.id.clone().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.headers, endpoint.headers);
    assert_eq!(read.secret, secret);
    let answer = store
        .get_idempotent_response(
            "key",
            webhookd_core::time::now() - std::time::Duration::from_secs(60),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&answer.body).contains(&secret.expose()));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_data_directory_and_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let database = format!("sqlite://{}", data.join("webhookd.db").display());
    let store = webhookd::run::open_store(&config(&database, None)).unwrap();
    assert_eq!(mode(&data), 0o700);
    for name in [
        "webhookd.db",
        "webhookd.db-wal",
        "webhookd.db-shm",
        "webhookd.lock",
    ] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    drop(store);

    // Files left readable by an older version are made private at start.
    let db = data.join("webhookd.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = webhookd::run::open_store(&config(&database, None)).unwrap();
    assert_eq!(mode(&db), 0o600);
}
