//! The zkCli golden session: `tests/zkcli/commands.txt` piped into Apache ZooKeeper's
//! zkCli, its output normalised by `tests/zkcli/normalize.py` and compared with
//! `tests/zkcli/expected.txt`, recorded against Apache ZooKeeper 3.8.
//!
//! `EK_REWRITE=1` rewrites expected.txt from the run instead of comparing (do that only
//! against Apache ZooKeeper). Skipped, with a printed reason, when zkCli is not installed.

use std::path::Path;
use std::process::Command;

use crate::harness::{python, run_bounded, Flavor, Server};

#[test]
fn golden_session() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("zkcli");
    if !zkcli_installed() {
        eprintln!("SKIPPED zkcli::golden_session: zkCli.sh not found (apt-get install zookeeper)");
        return;
    }
    let server = Server::start();
    let mut command = Command::new(python());
    command.arg(dir.join("run.py")).arg(server.addr());
    let output = run_bounded(command, "zkCli");
    let actual = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "run.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let expected_path = dir.join("expected.txt");
    if std::env::var("EK_REWRITE").as_deref() == Ok("1") {
        assert_eq!(
            server.flavor(),
            Flavor::ZooKeeper,
            "record expected.txt against Apache ZooKeeper only"
        );
        std::fs::write(&expected_path, &actual).expect("write expected.txt");
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).expect("read expected.txt");
    if actual != expected {
        panic!(
            "zkCli transcript differs from tests/zkcli/expected.txt\n{}\n--- server log ---\n{}",
            first_difference(&expected, &actual),
            server.log_tail()
        );
    }
}

fn zkcli_installed() -> bool {
    let from_env = std::env::var_os("ZKCLI").map(std::path::PathBuf::from);
    let debian = Path::new("/usr/share/zookeeper/bin/zkCli.sh").to_path_buf();
    from_env
        .into_iter()
        .chain([debian])
        .any(|path| path.is_file())
}

/// A short report: the first differing line with a little context from both sides.
fn first_difference(expected: &str, actual: &str) -> String {
    let expected: Vec<&str> = expected.lines().collect();
    let actual: Vec<&str> = actual.lines().collect();
    let at = expected
        .iter()
        .zip(&actual)
        .take_while(|(e, a)| e == a)
        .count();
    let from = at.saturating_sub(6);
    let show = |lines: &[&str]| lines[from.min(lines.len())..(at + 6).min(lines.len())].join("\n");
    format!(
        "first difference at line {}:\n--- expected ---\n{}\n--- actual ---\n{}",
        at + 1,
        show(&expected),
        show(&actual)
    )
}
