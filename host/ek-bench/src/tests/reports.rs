//! The shapes of the reports: human lines and the JSON line scripts parse.

use std::collections::BTreeMap;

use expect_test::{expect, Expect};

use crate::{FailoverReport, LatencySummary, LoadReport, OpReport, StartupReport};

fn latency(base: f64) -> LatencySummary {
    LatencySummary {
        p50_ms: base,
        p90_ms: base * 2.0,
        p99_ms: base * 4.0,
        p999_ms: base * 8.0,
        max_ms: base * 16.0,
        mean_ms: base * 2.0,
    }
}

fn load_report() -> LoadReport {
    let per_op = BTreeMap::from([
        (
            "getData".to_owned(),
            OpReport {
                ops: 900,
                errors: 0,
                throughput_ops_s: 450.0,
                latency: latency(0.2),
            },
        ),
        (
            "setData".to_owned(),
            OpReport {
                ops: 100,
                errors: 2,
                throughput_ops_s: 50.0,
                latency: latency(1.5),
            },
        ),
    ]);
    LoadReport {
        mode: "load",
        run_id: "test".to_owned(),
        servers: vec!["127.0.0.1:2181".to_owned(), "127.0.0.1:2182".to_owned()],
        server_version: Some("3.9.3-edgekeeper-0.0.0".to_owned()),
        sessions: 2,
        in_flight: 1,
        mix: "getData=90,setData=10".to_owned(),
        value_size: 100,
        keys: 1000,
        warmup_s: 1.0,
        duration_s: 2.0,
        ops: 1000,
        errors: 2,
        throughput_ops_s: 500.0,
        latency: latency(0.25),
        per_op,
    }
}

/// Checks that `json` is one line of JSON, and snapshots it pretty-printed.
fn check_json(json: &str, expect: Expect) {
    assert!(!json.contains('\n'), "the report is one line");
    let value: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
    expect.assert_eq(&serde_json::to_string_pretty(&value).unwrap());
}

#[test]
fn load_human_lines() {
    expect![[r#"
        setData  ops=100 errors=2 50.0 ops/s p50=1.50ms p90=3.00ms p99=6.00ms p99.9=12.00ms max=24.00ms
        getData  ops=900 errors=0 450.0 ops/s p50=0.200ms p90=0.400ms p99=0.800ms p99.9=1.60ms max=3.20ms
        total    ops=1000 errors=2 500.0 ops/s p50=0.250ms p90=0.500ms p99=1.00ms p99.9=2.00ms max=4.00ms | sessions=2 in-flight=1 value=100B keys=1000 mix=getData=90,setData=10 duration=2.00s servers=127.0.0.1:2181,127.0.0.1:2182"#]]
    .assert_eq(&load_report().human_lines().join("\n"));
}

#[test]
fn load_json_shape() {
    check_json(
        &serde_json::to_string(&load_report()).unwrap(),
        expect![[r#"
            {
              "duration_s": 2.0,
              "errors": 2,
              "in_flight": 1,
              "keys": 1000,
              "max_ms": 4.0,
              "mean_ms": 0.5,
              "mix": "getData=90,setData=10",
              "mode": "load",
              "ops": 1000,
              "p50_ms": 0.25,
              "p90_ms": 0.5,
              "p999_ms": 2.0,
              "p99_ms": 1.0,
              "per_op": {
                "getData": {
                  "errors": 0,
                  "max_ms": 3.2,
                  "mean_ms": 0.4,
                  "ops": 900,
                  "p50_ms": 0.2,
                  "p90_ms": 0.4,
                  "p999_ms": 1.6,
                  "p99_ms": 0.8,
                  "throughput_ops_s": 450.0
                },
                "setData": {
                  "errors": 2,
                  "max_ms": 24.0,
                  "mean_ms": 3.0,
                  "ops": 100,
                  "p50_ms": 1.5,
                  "p90_ms": 3.0,
                  "p999_ms": 12.0,
                  "p99_ms": 6.0,
                  "throughput_ops_s": 50.0
                }
              },
              "run_id": "test",
              "server_version": "3.9.3-edgekeeper-0.0.0",
              "servers": [
                "127.0.0.1:2181",
                "127.0.0.1:2182"
              ],
              "sessions": 2,
              "throughput_ops_s": 500.0,
              "value_size": 100,
              "warmup_s": 1.0
            }"#]],
    );
}

fn failover_report() -> FailoverReport {
    FailoverReport {
        mode: "failover",
        run_id: "test".to_owned(),
        servers: vec!["127.0.0.1:2181".to_owned(), "127.0.0.1:2182".to_owned()],
        writers: 8,
        rate_ops_s: 200.0,
        value_size: 100,
        settle_s: 5.0,
        duration_s: 30.0,
        killed: "127.0.0.1:2182".to_owned(),
        killed_mode: "leader".to_owned(),
        killed_pid: Some(4242),
        new_leader: Some("127.0.0.1:2181".to_owned()),
        writes_ok: 5900,
        errors: 8,
        reconnects: 8,
        expired_sessions: 0,
        recovered: true,
        longest_gap_ms: 493.341,
        longest_gap_start_ms: -4.215,
        kill_to_first_write_ms: Some(489.126),
        latency: latency(2.0),
    }
}

#[test]
fn failover_line_and_json() {
    let report = failover_report();
    expect![[r#"failover killed=127.0.0.1:2182 (leader, pid 4242) longest_gap=493ms (from -4.215ms after the kill) kill_to_first_write=489ms writes_ok=5900 errors=8 reconnects=8 expired_sessions=0 new_leader=127.0.0.1:2181 | writers=8 rate=200/s duration=30.0s servers=127.0.0.1:2181,127.0.0.1:2182"#]]
    .assert_eq(&report.human_line());
    check_json(
        &serde_json::to_string(&report).unwrap(),
        expect![[r#"
            {
              "duration_s": 30.0,
              "errors": 8,
              "expired_sessions": 0,
              "kill_to_first_write_ms": 489.126,
              "killed": "127.0.0.1:2182",
              "killed_mode": "leader",
              "killed_pid": 4242,
              "longest_gap_ms": 493.341,
              "longest_gap_start_ms": -4.215,
              "max_ms": 32.0,
              "mean_ms": 4.0,
              "mode": "failover",
              "new_leader": "127.0.0.1:2181",
              "p50_ms": 2.0,
              "p90_ms": 4.0,
              "p999_ms": 16.0,
              "p99_ms": 8.0,
              "rate_ops_s": 200.0,
              "reconnects": 8,
              "recovered": true,
              "run_id": "test",
              "servers": [
                "127.0.0.1:2181",
                "127.0.0.1:2182"
              ],
              "settle_s": 5.0,
              "value_size": 100,
              "writers": 8,
              "writes_ok": 5900
            }"#]],
    );
}

#[test]
fn startup_line_and_json() {
    let report = StartupReport {
        mode: "startup",
        cmd: "edgekeeper serve --config ek.toml".to_owned(),
        server: "127.0.0.1:2181".to_owned(),
        repeat: 3,
        launch_to_read_ms: vec![41.5, 38.25, 60.0],
        median_ms: 41.5,
        min_ms: 38.25,
        max_ms: 60.0,
    };
    expect![[r#"startup launch->first read: median=41.50ms min=38.25ms max=60.00ms over 3 launch(es) | server=127.0.0.1:2181 cmd=edgekeeper serve --config ek.toml"#]]
    .assert_eq(&report.human_line());
    check_json(
        &serde_json::to_string(&report).unwrap(),
        expect![[r#"
            {
              "cmd": "edgekeeper serve --config ek.toml",
              "launch_to_read_ms": [
                41.5,
                38.25,
                60.0
              ],
              "max_ms": 60.0,
              "median_ms": 41.5,
              "min_ms": 38.25,
              "mode": "startup",
              "repeat": 3,
              "server": "127.0.0.1:2181"
            }"#]],
    );
}
