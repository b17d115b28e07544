//! kazoo's recipes (`tests/python/test_kazoo.py`: lock, election, counter, data and children
//! watches, transactions, ephemerals, sequential names), run with pytest against the server.
//!
//! Needs Debian's python3-kazoo and python3-pytest for /usr/bin/python3 (or `$EK_PYTHON`
//! with kazoo and pytest installed); `.ci/run` installs them.

use std::path::Path;
use std::process::Command;

use crate::harness::{python, run_bounded, Server};

#[test]
fn recipes() {
    let server = Server::start();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let mut command = Command::new(python());
    command
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE"])
        .arg(&dir)
        .env("EK_ADDR", server.addr())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let output = run_bounded(command, "pytest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "kazoo tests failed ({}):\n{stdout}\n{stderr}\n--- server log ---\n{}",
        output.status,
        server.log_tail()
    );
}
