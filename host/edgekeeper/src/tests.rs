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

#[test]
fn local_cluster_flags_parse() {
    let cli = Cli::try_parse_from(["edgekeeper", "local-cluster", "--nodes", "3"]).unwrap();
    let Command::LocalCluster(args) = cli.command else {
        panic!("not local-cluster")
    };
    assert_eq!(
        (args.nodes, args.observers, args.dir.as_path()),
        (3, 0, std::path::Path::new("local-cluster"))
    );
    assert_eq!(
        (
            args.base_client_port,
            args.base_peer_port,
            args.base_admin_port
        ),
        (2181, 3888, 8080)
    );
    assert_eq!(args.bind.to_string(), "127.0.0.1");
    assert!(!args.no_start);

    let argv = [
        "edgekeeper",
        "local-cluster",
        "--nodes",
        "5",
        "--observers",
        "2",
        "--dir",
        "/tmp/c",
        "--base-client-port",
        "12181",
        "--base-peer-port",
        "13888",
        "--base-admin-port",
        "18080",
        "--bind",
        "::1",
        "--no-start",
    ];
    let cli = Cli::try_parse_from(argv).unwrap();
    let Command::LocalCluster(args) = cli.command else {
        panic!("not local-cluster")
    };
    assert_eq!((args.nodes, args.observers), (5, 2));
    assert_eq!(args.dir, std::path::PathBuf::from("/tmp/c"));
    assert_eq!(
        (
            args.base_client_port,
            args.base_peer_port,
            args.base_admin_port
        ),
        (12181, 13888, 18080)
    );
    assert_eq!(args.bind.to_string(), "::1");
    assert!(args.no_start);
}

#[test]
fn local_cluster_rejects_bad_flags() {
    let bad: &[&[&str]] = &[
        &["edgekeeper", "local-cluster"],
        &["edgekeeper", "local-cluster", "--nodes", "0"],
        &["edgekeeper", "local-cluster", "--nodes", "-1"],
        &[
            "edgekeeper",
            "local-cluster",
            "--nodes",
            "3",
            "--bind",
            "localhost",
        ],
        &[
            "edgekeeper",
            "local-cluster",
            "--nodes",
            "3",
            "--base-peer-port",
            "70000",
        ],
    ];
    for argv in bad {
        assert!(
            Cli::try_parse_from(argv.iter()).is_err(),
            "{argv:?} should fail"
        );
    }
}
