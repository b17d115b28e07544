use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{load, parse, LogFormat, LogSettings, PluginSettings};

const ORIGIN: &str = "/x/edgekeeper.toml";

fn ok(text: &str) -> (ek_server::Config, LogSettings, PluginSettings) {
    match parse(text, Path::new(ORIGIN)) {
        Ok(parsed) => parsed,
        Err(error) => panic!("{text:?} should parse, got: {error:#}"),
    }
}

fn err(text: &str) -> String {
    match parse(text, Path::new(ORIGIN)) {
        Ok(parsed) => panic!("{text:?} should fail, got {parsed:?}"),
        Err(error) => format!("{error:#}"),
    }
}

/// Asserts `text` fails with a message naming the file and `key`, containing `reason`.
fn check_err(text: &str, key: &str, reason: &str) {
    let message = err(text);
    let prefix = format!("config {ORIGIN}: key '{key}': ");
    assert!(
        message.starts_with(&prefix),
        "{message:?} should start with {prefix:?}"
    );
    assert!(
        message.contains(reason),
        "{message:?} should contain {reason:?}"
    );
}

#[test]
fn empty_file_gives_defaults() {
    let (config, log, _) = ok("");
    assert_eq!(config, ek_server::Config::default());
    assert_eq!(
        log,
        LogSettings {
            format: LogFormat::Human,
            level: "info".to_owned()
        }
    );
}

#[test]
fn no_file_gives_defaults() {
    let (config, log, plugins) = load(None).unwrap();
    assert_eq!(config, ek_server::Config::default());
    assert_eq!(log, LogSettings::default());
    assert_eq!(plugins, PluginSettings::default());
}

#[test]
fn load_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edgekeeper.toml");
    std::fs::write(&path, "tick_ms = 500\n[log]\nformat = \"json\"\n").unwrap();
    let (config, log, _) = load(Some(&path)).unwrap();
    assert_eq!(config.tick_ms, 500);
    assert_eq!(log.format, LogFormat::Json);
}

#[test]
fn load_names_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let message = format!("{:#}", load(Some(&path)).unwrap_err());
    assert!(
        message.starts_with(&format!("config {}: cannot read: ", path.display())),
        "{message}"
    );
}

#[test]
fn each_key_overrides_its_default() {
    let (config, log, _) = ok(r#"
        data_dir = "/var/lib/edgekeeper"
        client_addr = "127.0.0.1:12181"
        admin_addr = "[::1]:18080"
        tick_ms = 1000
        min_session_timeout_ms = 3000
        max_session_timeout_ms = 60000
        max_frame_bytes = 4096
        max_data_bytes = 2048
        snapshot_every_txns = 10
        snapshots_retained = 7
        reaper_interval_ms = 500
        max_client_connections = 0
        super_digest = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        node_id = 3

        [log]
        format = "json"
        level = "debug,ek_server=trace"
    "#);
    let expected = ek_server::Config {
        data_dir: PathBuf::from("/var/lib/edgekeeper"),
        client_addr: "127.0.0.1:12181".parse::<SocketAddr>().unwrap(),
        admin_addr: "[::1]:18080".parse::<SocketAddr>().unwrap(),
        tick_ms: 1000,
        min_session_timeout_ms: 3000,
        max_session_timeout_ms: 60000,
        max_frame_bytes: 4096,
        max_data_bytes: 2048,
        snapshot_every_txns: 10,
        snapshots_retained: 7,
        reaper_interval_ms: 500,
        max_client_connections: 0,
        super_digest: Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=".to_owned()),
        node_id: 3,
        worker_threads: 1,
        ensemble: None,
    };
    assert_eq!(config, expected);
    assert_eq!(log.format, LogFormat::Json);
    assert_eq!(log.level, "debug,ek_server=trace");
}

#[test]
fn one_key_leaves_the_others_at_default() {
    let defaults = ek_server::Config::default();
    let (config, _, _) = ok("node_id = 9");
    assert_eq!(
        config,
        ek_server::Config {
            node_id: 9,
            ..defaults.clone()
        }
    );
    let (config, _, _) = ok("data_dir = \"d\"");
    assert_eq!(
        config,
        ek_server::Config {
            data_dir: PathBuf::from("d"),
            ..defaults
        }
    );
    let (_, log, _) = ok("[log]\nlevel = \"warn\"");
    assert_eq!(
        log,
        LogSettings {
            format: LogFormat::Human,
            level: "warn".to_owned()
        }
    );
}

#[test]
fn session_timeouts_follow_tick_ms() {
    let (config, _, _) = ok("tick_ms = 100");
    assert_eq!(
        (config.min_session_timeout_ms, config.max_session_timeout_ms),
        (200, 2000)
    );
    let (config, _, _) = ok("tick_ms = 100\nmin_session_timeout_ms = 1000");
    assert_eq!(
        (config.min_session_timeout_ms, config.max_session_timeout_ms),
        (1000, 2000)
    );
    let (config, _, _) = ok("tick_ms = 100\nmax_session_timeout_ms = 900");
    assert_eq!(
        (config.min_session_timeout_ms, config.max_session_timeout_ms),
        (200, 900)
    );
}

#[test]
fn max_data_bytes_may_exceed_max_frame_bytes() {
    // ZooKeeper's own defaults have this shape; the frame limit then binds first.
    let (config, _, _) = ok("max_frame_bytes = 2048\nmax_data_bytes = 4096");
    assert_eq!(
        (config.max_frame_bytes, config.max_data_bytes),
        (2048, 4096)
    );
}

#[test]
fn unknown_key_is_named() {
    check_err(
        "tick_ms = 5\ntickTime = 2000",
        "tickTime",
        "unknown key (line 2)",
    );
    check_err("[log]\ncolour = \"red\"", "log.colour", "unknown key");
    check_err("[server]\nport = 1", "server", "unknown key");
}

#[test]
fn wrong_types_are_named() {
    check_err(
        "tick_ms = \"2000\"",
        "tick_ms",
        "invalid type: string \"2000\", expected u32",
    );
    check_err("tick_ms = -1", "tick_ms", "expected u32");
    check_err("tick_ms = 5000000000", "tick_ms", "expected u32");
    check_err("node_id = 1.5", "node_id", "invalid type: floating point");
    check_err("data_dir = 3", "data_dir", "invalid type: integer");
    check_err(
        "super_digest = true",
        "super_digest",
        "invalid type: boolean",
    );
    check_err(
        "[log]\nformat = \"xml\"",
        "log.format",
        "unknown variant `xml`",
    );
    check_err("log = 1", "log", "invalid type: integer");
}

#[test]
fn type_errors_give_the_position() {
    check_err("\n\ntick_ms = \"x\"", "tick_ms", "(line 3, column 11)");
}

#[test]
fn syntax_error_names_the_file() {
    let message = err("tick_ms = = 3");
    assert!(
        message.starts_with(&format!("config {ORIGIN}: ")),
        "{message}"
    );
    assert!(message.contains("line 1"), "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn bad_addresses_are_named() {
    check_err(
        "client_addr = \"localhost:2181\"",
        "client_addr",
        "invalid socket address",
    );
    check_err(
        "client_addr = \"0.0.0.0\"",
        "client_addr",
        "invalid socket address",
    );
    check_err(
        "admin_addr = \"1.2.3.4:99999\"",
        "admin_addr",
        "invalid socket address",
    );
    check_err(
        "client_addr = \"127.0.0.1:2000\"\nadmin_addr = \"127.0.0.1:2000\"",
        "admin_addr",
        "must differ from client_addr (127.0.0.1:2000)",
    );
}

#[test]
fn port_zero_may_repeat() {
    let (config, _, _) = ok("client_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.1:0\"");
    assert_eq!(config.client_addr.port(), 0);
}

#[test]
fn bad_numbers_are_named() {
    check_err("tick_ms = 0", "tick_ms", "must be > 0");
    check_err(
        "min_session_timeout_ms = 0",
        "min_session_timeout_ms",
        "must be > 0",
    );
    check_err(
        "min_session_timeout_ms = 5000\nmax_session_timeout_ms = 4000",
        "min_session_timeout_ms",
        "must be <= max_session_timeout_ms (4000)",
    );
    // The default max (20 ticks) applies when only min is given.
    check_err(
        "tick_ms = 10\nmin_session_timeout_ms = 201",
        "min_session_timeout_ms",
        "(200)",
    );
    check_err(
        "max_frame_bytes = 1023",
        "max_frame_bytes",
        "must be >= 1024",
    );
    check_err("max_data_bytes = 0", "max_data_bytes", "must be > 0");
    check_err(
        "snapshot_every_txns = 0",
        "snapshot_every_txns",
        "must be > 0",
    );
    check_err(
        "snapshots_retained = 0",
        "snapshots_retained",
        "must be > 0",
    );
    check_err(
        "reaper_interval_ms = 0",
        "reaper_interval_ms",
        "must be > 0",
    );
    check_err("node_id = 0", "node_id", "must be > 0");
    check_err(
        "worker_threads = 0",
        "worker_threads",
        "must be between 1 and 64",
    );
    check_err(
        "worker_threads = 65",
        "worker_threads",
        "must be between 1 and 64",
    );
    check_err("data_dir = \"\"", "data_dir", "must not be empty");
}

#[test]
fn bad_super_digests_are_named() {
    let form = "must be user:base64(sha1(user:password))";
    check_err("super_digest = \"super\"", "super_digest", form);
    check_err(
        "super_digest = \":D/InIHSb7yEEbrWz8b9l71RjZJU=\"",
        "super_digest",
        "empty user",
    );
    check_err(
        "super_digest = \"super:not base64!\"",
        "super_digest",
        "bad base64",
    );
    check_err(
        "super_digest = \"super:c2hvcnQ=\"",
        "super_digest",
        "found 5 bytes",
    );
}

#[test]
fn bad_log_level_is_named() {
    check_err("[log]\nlevel = \"\"", "log.level", "must not be empty");
    check_err(
        "[log]\nlevel = \"ek_server=loud\"",
        "log.level",
        "not a tracing filter",
    );
}

#[test]
fn error_message_has_the_documented_shape() {
    assert_eq!(
        err("tick_ms = 0"),
        "config /x/edgekeeper.toml: key 'tick_ms': must be > 0"
    );
}

mod ensemble;

#[test]
fn plugins_table_parses_and_checks() {
    let (_, _, plugins) = ok("[plugins]\nscaling_interval_ms = 500\n[[plugins.sources]]\nname = \"static\"\nfile = \"services.json\"\n");
    assert_eq!(plugins.scaling_interval_ms, 500);
    assert_eq!(
        plugins.sources,
        vec![("static".to_owned(), PathBuf::from("/x/services.json"))]
    );
    check_err(
        "[plugins]\nscaling_interval_ms = 5\n",
        "plugins.scaling_interval_ms",
        ">= 100",
    );
    check_err(
        "[[plugins.sources]]\nname = \"a\"\nfile = \"f\"\n[[plugins.sources]]\nname = \"a\"\nfile = \"g\"\n",
        "plugins.sources[1].name",
        "unique",
    );
    let message = err("[plugins]\nbogus = 1\n");
    assert!(message.contains("plugins.bogus"), "{message}");
}
