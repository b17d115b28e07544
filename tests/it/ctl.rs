//! `edgekeeper ctl`, the small zkCli, driven as a user would: one process per command
//! against a running server (edgekeeper, or Apache ZooKeeper with `EK_TEST_ZOOKEEPER=1`).

use std::process::Command;

use crate::harness::{edgekeeper_bin, run_bounded, Server};

fn ctl(server: &Server, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(edgekeeper_bin());
    command
        .arg("ctl")
        .arg("--server")
        .arg(server.addr())
        .args(args);
    let output = run_bounded(command, "edgekeeper ctl");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(server: &Server, args: &[&str]) -> String {
    let (success, stdout, stderr) = ctl(server, args);
    assert!(success, "ctl {args:?} failed: {stderr}");
    stdout
}

#[test]
fn ctl_covers_the_basic_commands() {
    let server = Server::start();
    assert_eq!(ok(&server, &["create", "/app", "hello"]).trim(), "/app");
    assert_eq!(ok(&server, &["get", "/app"]).trim(), "hello");
    ok(&server, &["set", "/app", "world", "--version", "0"]);
    assert_eq!(ok(&server, &["get", "/app"]).trim(), "world");
    let created = ok(&server, &["create", "-s", "/app/job-", ""]);
    assert_eq!(created.trim(), "/app/job-0000000000");
    let children = ok(&server, &["ls", "/app"]);
    assert_eq!(children.trim(), "job-0000000000");
    let stat = ok(&server, &["stat", "/app"]);
    assert!(stat.contains("dataVersion = 1"), "{stat}");
    assert!(stat.contains("numChildren = 1"), "{stat}");

    // Errors use ZooKeeper's wording and a non-zero exit code.
    let (success, _, stderr) = ctl(&server, &["get", "/missing"]);
    assert!(!success);
    assert!(stderr.contains("Node does not exist: /missing"), "{stderr}");
    let (success, _, stderr) = ctl(&server, &["set", "/app", "x", "--version", "7"]);
    assert!(!success);
    assert!(stderr.contains("version No is not valid"), "{stderr}");
    let (success, _, stderr) = ctl(&server, &["delete", "/app"]);
    assert!(!success);
    assert!(stderr.contains("Node not empty: /app"), "{stderr}");

    ok(&server, &["delete", "/app/job-0000000000"]);
    ok(&server, &["delete", "/app"]);
    let (success, _, _) = ctl(&server, &["stat", "/app"]);
    assert!(!success, "/app still exists after delete");
}
