//! Runs `tests/schemathesis/run.sh` — schemathesis generating hostile and valid requests from
//! the OpenAPI document of a live API-only node — against the binary cargo built. It fails on
//! any 5xx, on any answer outside the document, and when the node dies.

use std::path::Path;
use std::process::Command;

#[test]
fn schemathesis_finds_no_server_error_and_no_answer_outside_the_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let probe = Command::new("python3")
        .args(["-c", "import schemathesis"])
        .status()
        .expect("python3 runs");
    assert!(
        probe.success(),
        "the hostile-input run needs schemathesis: pip install -r tests/schemathesis/requirements.txt"
    );
    let status = Command::new("bash")
        .arg("tests/schemathesis/run.sh")
        .current_dir(&root)
        .env("WEBHOOKD_BIN", env!("CARGO_BIN_EXE_webhookd"))
        .status()
        .expect("bash runs");
    assert!(
        status.success(),
        "schemathesis found failures (its report is above)"
    );
}
