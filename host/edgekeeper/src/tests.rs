use clap::{CommandFactory, Parser};

use super::{Cli, Command};
use crate::config::LogFormat;

#[test]
fn cli_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn serve_takes_no_required_arguments() {
    let cli = Cli::try_parse_from(["edgekeeper", "serve"]).unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("not serve")
    };
    assert_eq!(
        (args.config, args.log_format, args.log_level),
        (None, None, None)
    );
}

#[test]
fn serve_flags_parse() {
    let argv = [
        "edgekeeper",
        "serve",
        "--config",
        "/etc/ek.toml",
        "--log-format",
        "json",
        "--log-level",
        "debug",
    ];
    let cli = Cli::try_parse_from(argv).unwrap();
    let Command::Serve(args) = cli.command else {
        panic!("not serve")
    };
    assert_eq!(
        args.config.as_deref(),
        Some(std::path::Path::new("/etc/ek.toml"))
    );
    assert_eq!(args.log_format, Some(LogFormat::Json));
    assert_eq!(args.log_level.as_deref(), Some("debug"));
}

#[test]
fn bad_log_format_is_rejected() {
    assert!(Cli::try_parse_from(["edgekeeper", "serve", "--log-format", "xml"]).is_err());
}

#[test]
fn ctl_commands_parse() {
    let commands: &[&[&str]] = &[
        &["ls", "/"],
        &["get", "/a"],
        &["get", "-s", "/a"],
        &["get", "--stat", "/a"],
        &["set", "/a", "data"],
        &["set", "/a", "data", "--version", "3"],
        &["set", "/a", "data", "-v", "-1"],
        &["create", "/a"],
        &["create", "-e", "-s", "/a", "data"],
        &["create", "-es", "--hold", "/a"],
        &["delete", "/a", "--version", "0"],
        &["stat", "/a"],
        &["watch", "/a"],
        &["watch", "/a", "--count", "2"],
        &["watch", "--oneshot", "-n", "1", "/a"],
    ];
    for command in commands {
        let argv = [
            "edgekeeper",
            "ctl",
            "--server",
            "127.0.0.1:22181",
            "--timeout-ms",
            "500",
        ]
        .iter()
        .chain(command.iter());
        if let Err(error) = Cli::try_parse_from(argv) {
            panic!("{command:?}: {error}");
        }
    }
}

#[test]
fn ctl_rejects_bad_arguments() {
    let bad: &[&[&str]] = &[
        &["edgekeeper", "ctl"],
        &["edgekeeper", "ctl", "ls"],
        &["edgekeeper", "ctl", "set", "/a"],
        &["edgekeeper", "ctl", "set", "/a", "d", "--version", "x"],
        &["edgekeeper", "ctl", "--timeout-ms", "0", "ls", "/"],
        &["edgekeeper", "ctl", "frob", "/"],
    ];
    for argv in bad {
        assert!(
            Cli::try_parse_from(argv.iter()).is_err(),
            "{argv:?} should fail"
        );
    }
}
