//! The flags, parsed as the `edgekeeper` binary will: `edgekeeper bench <mode> ...`.

use clap::{CommandFactory, Parser};

use crate::{BenchArgs, BenchMode, OpKind, ServerPid};

/// Stands in for the `edgekeeper` binary's CLI: `Command::Bench(BenchArgs)`.
#[derive(Debug, Parser)]
#[command(name = "edgekeeper")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Benchmark a ZooKeeper-protocol server.
    Bench(BenchArgs),
}

fn parse(args: &[&str]) -> Result<BenchMode, clap::Error> {
    let argv = ["edgekeeper", "bench"].iter().chain(args);
    Cli::try_parse_from(argv).map(|cli| match cli.command {
        Command::Bench(bench) => bench.mode,
    })
}

#[test]
fn the_command_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn load_defaults() {
    let BenchMode::Load(load) = parse(&["load"]).unwrap() else {
        panic!("not load")
    };
    assert_eq!(load.servers, ["127.0.0.1:2181"]);
    assert_eq!((load.sessions, load.in_flight), (4, 1));
    assert_eq!(load.mix.to_string(), "getData=90,setData=10");
    assert_eq!(
        (load.value_size, load.keys, load.multi_size),
        (100, 1000, 2)
    );
    assert_eq!(
        (load.warmup_s, load.duration_s, load.ops),
        (2.0, None, None)
    );
    assert!(!load.keep);
}

#[test]
fn load_flags_and_aliases() {
    let mode = parse(&[
        "load",
        "--servers",
        "a:1,b:2,c:3",
        "--sessions",
        "30",
        "--in-flight",
        "8",
        "--mix",
        "multi=1,create=1",
        "--warmup",
        "0.5",
        "--duration",
        "20",
        "--ops",
        "1000",
        "--keep",
    ])
    .unwrap();
    let BenchMode::Load(load) = mode else {
        panic!("not load")
    };
    assert_eq!(load.servers, ["a:1", "b:2", "c:3"]);
    assert_eq!((load.sessions, load.in_flight), (30, 8));
    assert!(load.mix.contains(OpKind::Multi) && load.mix.contains(OpKind::Create));
    assert_eq!(
        (load.warmup_s, load.duration_s, load.ops),
        (0.5, Some(20.0), Some(1000))
    );
    assert!(load.keep);
    for bad in [
        &["load", "--sessions", "0"][..],
        &["load", "--in-flight", "0"],
        &["load", "--ops", "0"],
        &["load", "--duration-s", "-2"],
        &["load", "--mix", "getData"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn failover_needs_a_way_to_kill() {
    let error = parse(&["failover", "--servers", "a:1"]).unwrap_err();
    assert_eq!(
        error.kind(),
        clap::error::ErrorKind::MissingRequiredArgument
    );
    let BenchMode::Failover(failover) = parse(&[
        "failover",
        "--servers",
        "a:1,b:2",
        "--leader-pids",
        "a:1=10,b:2=11",
        "--settle",
        "3",
        "--rate",
        "50",
    ])
    .unwrap() else {
        panic!("not failover")
    };
    assert_eq!(
        failover.pids,
        [
            ServerPid {
                addr: "a:1".to_owned(),
                pid: 10
            },
            ServerPid {
                addr: "b:2".to_owned(),
                pid: 11
            }
        ]
    );
    assert_eq!((failover.settle_s, failover.duration_s), (3.0, 30.0));
    assert_eq!((failover.writers, failover.rate), (8, 50.0));
    assert!(parse(&["failover", "--servers", "a:1", "--kill-cmd", "true"]).is_ok());
    assert!(parse(&[
        "failover",
        "--servers",
        "a:1",
        "--pids",
        "a:1",
        "--rate",
        "1"
    ])
    .is_err());
    assert!(parse(&[
        "failover",
        "--servers",
        "a:1",
        "--kill-cmd",
        "x",
        "--rate",
        "0"
    ])
    .is_err());
}

#[test]
fn startup_flags() {
    let BenchMode::Startup(startup) = parse(&[
        "startup",
        "--cmd",
        "edgekeeper serve --config ek.toml",
        "--server",
        "127.0.0.1:2281",
        "--repeat",
        "5",
    ])
    .unwrap() else {
        panic!("not startup")
    };
    assert_eq!(startup.cmd, "edgekeeper serve --config ek.toml");
    assert_eq!(
        (startup.server.as_str(), startup.repeat),
        ("127.0.0.1:2281", 5)
    );
    assert_eq!((startup.path.as_str(), startup.poll_ms), ("/", 10));
    assert!(parse(&["startup"]).is_err(), "--cmd is required");
}
