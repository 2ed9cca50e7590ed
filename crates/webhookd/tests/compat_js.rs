//! Runs the walk in `tests/compat-js` — the official Svix JavaScript SDK, used as a customer
//! would, through the main calls of each resource — with Node against the binary cargo built,
//! on a fresh SQLite database. Needs `node` and the walk's packages
//! (`npm ci --prefix tests/compat-js`).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn svix_javascript_sdk_walk() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let walk = root.join("tests/compat-js");
    assert!(
        walk.join("node_modules/svix").is_dir(),
        "the JavaScript walk needs its packages: npm ci --prefix tests/compat-js"
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.local_addr().expect("an address").port()
    };
    let log = std::fs::File::create(dir.path().join("webhookd.log")).expect("a log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_webhookd"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WEBHOOKD_") {
            command.env_remove(name);
        }
    }
    let child = command
        .arg("serve")
        .env("WEBHOOKD_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "WEBHOOKD_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("webhookd.db").display()),
        )
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the log file"))
        .stderr(log)
        .spawn()
        .expect("webhookd starts");
    let _server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "webhookd did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("node")
        .arg("walk.mjs")
        .current_dir(&walk)
        .env("WEBHOOKD_URL", format!("http://127.0.0.1:{port}"))
        .status()
        .expect("node runs");
    let log = std::fs::read_to_string(dir.path().join("webhookd.log")).unwrap_or_default();
    assert!(
        status.success(),
        "the JavaScript walk failed (its output is above)\n--- webhookd log ---\n{log}"
    );
}
