//! Unit tests: argument parsing, the op mix, latency summaries, report shapes and the
//! failover and startup arithmetic. The network paths are covered by `tests/bench.rs`
//! against a real server.

mod cli;
mod reports;

use std::time::Duration;

use expect_test::expect;

use crate::conn::{srvr_field, srvr_mode};
use crate::failover::{first_write_after_kill, kill_command, longest_gap, Gap, ServerPid};
use crate::mix::{OpKind, OpMix, Rng};
use crate::parse_secs;
use crate::startup::median;
use crate::stats::{human_ms, new_histogram, record, LatencySummary, Recorder};
use crate::tree::check_run_id;

#[test]
fn mix_parses_and_normalises() {
    let mix: OpMix = " getdata=90, SETDATA=10 ,exists=0".parse().unwrap();
    assert_eq!(mix.to_string(), "getData=90,setData=10");
    assert!(mix.contains(OpKind::GetData));
    assert!(
        !mix.contains(OpKind::Exists),
        "a zero weight is never drawn"
    );
    let all: OpMix = "create=1,setData=2,getData=3,exists=4,multi=5"
        .parse()
        .unwrap();
    assert_eq!(all.weights().len(), 5);
}

#[test]
fn mix_refuses_bad_input() {
    let errors: Vec<String> = [
        "",
        "getData",
        "foo=1",
        "getData=x",
        "getData=-1",
        "getData=1,getData=2",
        "getData=0",
    ]
    .iter()
    .map(|text| text.parse::<OpMix>().unwrap_err())
    .collect();
    expect![[r#"
        [
            "no op has a weight above 0",
            "'getData': expected OP=WEIGHT, e.g. getData=90",
            "'foo': unknown op (create, setData, getData, exists, multi)",
            "'getData=x': the weight must be a whole number",
            "'getData=-1': the weight must be a whole number",
            "'getData' is given twice",
            "no op has a weight above 0",
        ]
    "#]]
    .assert_debug_eq(&errors);
}

#[test]
fn mix_draws_in_proportion() {
    let mix: OpMix = "getData=90,setData=9,multi=1".parse().unwrap();
    let mut rng = Rng::new(7, 0);
    let mut counts = [0u32; OpKind::ALL.len()];
    let draws = 200_000;
    for _ in 0..draws {
        counts[mix.pick(&mut rng).index()] += 1;
    }
    let share = |kind: OpKind| f64::from(counts[kind.index()]) / f64::from(draws);
    assert!((share(OpKind::GetData) - 0.90).abs() < 0.005, "{counts:?}");
    assert!((share(OpKind::SetData) - 0.09).abs() < 0.005, "{counts:?}");
    assert!((share(OpKind::Multi) - 0.01).abs() < 0.002, "{counts:?}");
    assert_eq!(counts[OpKind::Create.index()], 0);
}

#[test]
fn rng_is_seeded_and_bounded() {
    let draw = |seed, stream| {
        let mut rng = Rng::new(seed, stream);
        (0..5).map(|_| rng.below(10)).collect::<Vec<_>>()
    };
    assert_eq!(draw(1, 0), draw(1, 0), "same seed, same draws");
    assert_ne!(draw(1, 0), draw(1, 1), "each session draws its own stream");
    let mut rng = Rng::new(3, 3);
    assert!((0..10_000).all(|_| rng.below(7) < 7));
}

#[test]
fn summary_of_known_latencies() {
    let mut histogram = new_histogram();
    for ms in 1..=1000u64 {
        record(&mut histogram, Duration::from_millis(ms));
    }
    // HDR keeps 3 significant digits: each value within 0.1%.
    expect![[r#"
        LatencySummary {
            p50_ms: 500.223,
            p90_ms: 900.095,
            p99_ms: 990.207,
            p999_ms: 999.423,
            max_ms: 1000.447,
            mean_ms: 500.505,
        }
    "#]]
    .assert_debug_eq(&LatencySummary::of(&histogram));
    assert_eq!(
        LatencySummary::of(&new_histogram()),
        LatencySummary::default(),
        "an empty histogram summarises as zeros"
    );
}

#[test]
fn sub_microsecond_and_huge_latencies_are_clamped() {
    let mut histogram = new_histogram();
    record(&mut histogram, Duration::from_nanos(10));
    record(&mut histogram, Duration::from_secs(10 * 3600));
    assert_eq!(histogram.len(), 2);
    assert_eq!(histogram.min(), 1);
    assert!(histogram.max() >= 3_600_000_000);
}

#[test]
fn recorder_merges_sessions() {
    let mut a = Recorder::default();
    a.record(OpKind::GetData, Duration::from_micros(100), true);
    a.record(OpKind::GetData, Duration::from_micros(100), false);
    let mut b = Recorder::default();
    b.record(OpKind::GetData, Duration::from_micros(300), true);
    b.record(OpKind::SetData, Duration::from_micros(900), true);
    a.merge(&b);
    let get = a.get(OpKind::GetData);
    assert_eq!((get.latency_us.len(), get.errors), (2, 1));
    assert_eq!(get.latency_us.max(), 300);
    assert_eq!(a.get(OpKind::SetData).latency_us.len(), 1);
    assert_eq!(a.get(OpKind::Multi).latency_us.len(), 0);
}

#[test]
fn human_ms_keeps_three_digits() {
    let texts: Vec<String> = [0.0, 0.0424, 0.412, 3.456, 12.3, 123.4, 4567.8]
        .into_iter()
        .map(human_ms)
        .collect();
    expect![[r#"
        [
            "0.000ms",
            "0.042ms",
            "0.412ms",
            "3.46ms",
            "12.30ms",
            "123ms",
            "4568ms",
        ]
    "#]]
    .assert_debug_eq(&texts);
}

#[test]
fn failover_gaps() {
    // Steady writes every 5 ms, a 500 ms hole opening just before the kill.
    let mut replies: Vec<f64> = (0..100).map(|i| -500.0 + 5.0 * f64::from(i)).collect();
    replies.extend((0..100).map(|i| 497.0 + 5.0 * f64::from(i)));
    assert_eq!(
        longest_gap(&replies, -600.0, 1000.0),
        Gap {
            length_ms: 502.0,
            start_ms: -5.0,
        }
    );
    // Never recovered: the last gap runs to the end of the run.
    assert_eq!(
        longest_gap(&[-20.0, -10.0], -100.0, 900.0),
        Gap {
            length_ms: 910.0,
            start_ms: -10.0,
        }
    );
    // No write ever succeeded: the whole run is one gap.
    assert_eq!(
        longest_gap(&[], -100.0, 900.0),
        Gap {
            length_ms: 1000.0,
            start_ms: -100.0,
        }
    );
}

#[test]
fn recovery_counts_only_writes_sent_after_the_kill() {
    // The first reply after the kill answers a write sent before it: the dying leader's.
    let successes = [(-10.0, -8.0), (-3.0, 1.5), (200.0, 230.0), (180.0, 240.0)];
    assert_eq!(first_write_after_kill(&successes), Some(230.0));
    assert_eq!(first_write_after_kill(&[(-3.0, 1.5)]), None);
    assert_eq!(first_write_after_kill(&[]), None);
}

#[test]
fn kill_command_placeholders() {
    let command = kill_command(
        "docker kill zk-{port}; echo {host} {addr} {pid}",
        "127.0.0.1:2182",
        Some(42),
    );
    assert_eq!(
        command,
        "docker kill zk-2182; echo 127.0.0.1 127.0.0.1:2182 42"
    );
    assert_eq!(kill_command("x {pid}", "h:1", None), "x {pid}");
}

#[test]
fn server_pid_parses() {
    assert_eq!(
        " 127.0.0.1:2181 = 77".parse::<ServerPid>().unwrap(),
        ServerPid {
            addr: "127.0.0.1:2181".to_owned(),
            pid: 77
        }
    );
    for bad in ["127.0.0.1:2181", "a=0", "a=-3", "a=x"] {
        assert!(bad.parse::<ServerPid>().is_err(), "{bad}");
    }
}

#[test]
fn median_of_launches() {
    assert_eq!(median(&[]), 0.0);
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
}

#[test]
fn srvr_answers() {
    let zookeeper = "Zookeeper version: 3.8.0-abc, built on 2024-12-29 17:54 UTC\n\
                     Latency min/avg/max: 0/0.0/0\nZxid: 0x100000002\nMode: follower\n\
                     Node count: 5\n";
    assert_eq!(srvr_mode(zookeeper), Some("follower"));
    assert_eq!(
        srvr_field(zookeeper, "Zookeeper version:"),
        Some("3.8.0-abc, built on 2024-12-29 17:54 UTC")
    );
    assert_eq!(
        srvr_mode("This ZooKeeper instance is not currently serving requests\n"),
        None
    );
}

#[test]
fn seconds_and_run_ids() {
    assert_eq!(parse_secs("2"), Ok(2.0));
    assert_eq!(parse_secs("0.5s"), Ok(0.5));
    assert!(parse_secs("-1").is_err());
    assert!(parse_secs("inf").is_err());
    assert!(parse_secs("ten").is_err());
    assert!(check_run_id("nightly-2026.01_a").is_ok());
    for bad in ["", ".", "..", "a/b", "a b"] {
        assert!(check_run_id(bad).is_err(), "{bad:?}");
    }
}
