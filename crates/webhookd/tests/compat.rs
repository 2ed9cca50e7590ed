//! Runs the compatibility suite in `tests/compat` — the official Svix Python SDK and the
//! `standardwebhooks` verifier, used as a customer would — against the binary cargo built:
//! on SQLite always, and on PostgreSQL too when `WEBHOOKD_TEST_DATABASE_URL` is set.

use std::path::Path;
use std::process::Command;

#[test]
fn svix_python_sdk_and_standard_webhooks_verifier() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let probe = Command::new("python3")
        .args(["-c", "import svix, standardwebhooks, pytest"])
        .status()
        .expect("python3 runs");
    assert!(
        probe.success(),
        "the compatibility suite needs its Python packages: \
         pip install -r tests/compat/requirements.txt"
    );
    let status = Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/compat",
        ])
        .current_dir(&root)
        .env("WEBHOOKD_BIN", env!("CARGO_BIN_EXE_webhookd"))
        .status()
        .expect("pytest runs");
    assert!(
        status.success(),
        "the compatibility suite failed (its output is above)"
    );
}
