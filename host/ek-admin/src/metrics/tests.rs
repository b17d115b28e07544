use super::*;
use crate::expo::{self, Family, Sample};
use expect_test::expect;
use std::sync::Arc;

fn parsed(metrics: &Metrics) -> Vec<Family> {
    let text = metrics.render();
    expo::parse(&text).unwrap_or_else(|error| panic!("{error}\n---\n{text}"))
}

fn family<'a>(families: &'a [Family], name: &str) -> &'a Family {
    families
        .iter()
        .find(|family| family.name == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

fn only_value(families: &[Family], name: &str) -> f64 {
    let family = family(families, name);
    assert_eq!(family.samples.len(), 1, "{name}");
    family.samples[0].value
}

/// The sample of `name` whose labels include every pair in `labels`.
fn sample<'a>(family: &'a Family, name: &str, labels: &[(&str, &str)]) -> &'a Sample {
    family
        .samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
        .unwrap_or_else(|| panic!("no {name}{labels:?}"))
}

#[test]
fn every_family_is_declared_with_help_and_type() {
    let metrics = Metrics::new();
    metrics.observe_request("getData", Duration::from_micros(80));
    let families = parsed(&metrics);
    let expected = [
        ("znode_count", "gauge"),
        ("watch_count", "gauge"),
        ("global_sessions", "gauge"),
        ("num_alive_connections", "gauge"),
        ("outstanding_requests", "gauge"),
        ("ephemerals_count", "gauge"),
        ("approximate_data_size", "gauge"),
        ("last_processed_zxid", "gauge"),
        ("snapshot_size_bytes", "gauge"),
        ("packets_received", "counter"),
        ("packets_sent", "counter"),
        ("fsync_count", "counter"),
        ("snapshot_count", "counter"),
        ("connection_rejected", "counter"),
        ("bad_frames", "counter"),
        ("request_latency_seconds", "histogram"),
        ("fsync_latency_seconds", "histogram"),
        ("snapshot_duration_seconds", "histogram"),
        ("server_info", "gauge"),
        ("server_state", "gauge"),
        ("zab_epoch", "gauge"),
        ("zab_accepted_epoch", "gauge"),
        ("zab_last_zxid", "gauge"),
        ("zab_last_committed_zxid", "gauge"),
        ("zab_quorum_size", "gauge"),
        ("zab_voters", "gauge"),
        ("zab_observers", "gauge"),
        ("zab_synced_learners", "gauge"),
        ("zab_leader_id", "gauge"),
        ("zab_syncs_total", "counter"),
        ("zab_digest_mismatches_total", "counter"),
        ("zab_proposal_latency_seconds", "histogram"),
        ("zab_commit_latency_seconds", "histogram"),
    ];
    let names: Vec<(&str, &str)> = families
        .iter()
        .map(|f| (f.name.as_str(), f.kind.as_str()))
        .collect();
    assert_eq!(names, expected);
    for family in &families {
        assert!(
            family.help.as_deref().is_some_and(|h| !h.is_empty()),
            "{}",
            family.name
        );
    }
}

#[test]
fn gauges_round_trip_and_render_exactly() {
    let metrics = Metrics::new();
    let gauges = Gauges {
        znode_count: 12,
        watch_count: 3,
        global_sessions: 4,
        num_alive_connections: 5,
        outstanding_requests: 6,
        ephemerals_count: 7,
        approximate_data_size: 8_192,
        // Above 2^53: must not go through f64.
        last_processed_zxid: (7 << 32) | 0x1_2345 | (1 << 60),
    };
    metrics.set_gauges(&gauges);
    metrics.observe_snapshot(4_096, Duration::from_millis(30));
    assert_eq!(metrics.gauges(), gauges);
    assert_eq!(metrics.snapshot_size_bytes(), 4_096);
    let text = metrics.render();
    assert!(text.contains(&format!(
        "\nlast_processed_zxid {}\n",
        gauges.last_processed_zxid
    )));
    let families = parsed(&metrics);
    assert_eq!(only_value(&families, "znode_count"), 12.0);
    assert_eq!(only_value(&families, "approximate_data_size"), 8_192.0);
    assert_eq!(only_value(&families, "snapshot_size_bytes"), 4_096.0);
    assert_eq!(only_value(&families, "snapshot_count"), 1.0);
}

#[test]
fn counters_count_and_reset_only_the_four_letter_view() {
    let metrics = Metrics::new();
    for _ in 0..5 {
        metrics.inc_packets_received();
    }
    for _ in 0..3 {
        metrics.inc_packets_sent();
    }
    metrics.inc_connection_rejected();
    metrics.inc_bad_frames();
    metrics.inc_bad_frames();
    metrics.observe_fsync(Duration::from_micros(700));
    assert_eq!((metrics.packets_received(), metrics.packets_sent()), (5, 3));

    metrics.reset();
    metrics.inc_packets_received();
    assert_eq!((metrics.packets_received(), metrics.packets_sent()), (1, 0));
    let families = parsed(&metrics);
    assert_eq!(only_value(&families, "packets_received"), 6.0);
    assert_eq!(only_value(&families, "packets_sent"), 3.0);
    assert_eq!(only_value(&families, "connection_rejected"), 1.0);
    assert_eq!(only_value(&families, "bad_frames"), 2.0);
    assert_eq!(only_value(&families, "fsync_count"), 1.0);
}

#[test]
fn histogram_buckets_are_inclusive_and_cumulative() {
    let metrics = Metrics::new();
    for elapsed in [
        Duration::from_micros(10),
        Duration::from_micros(50), // exactly on a bound: counts in le="0.00005"
        Duration::from_micros(51),
        Duration::from_millis(3),
        Duration::from_secs(20), // past the last bound: only +Inf
    ] {
        metrics.observe_fsync(elapsed);
    }
    let families = parsed(&metrics);
    let fsync = family(&families, "fsync_latency_seconds");
    let bucket = |le: &str| sample(fsync, "fsync_latency_seconds_bucket", &[("le", le)]).value;
    assert_eq!(bucket("0.00005"), 2.0);
    assert_eq!(bucket("0.0001"), 3.0);
    assert_eq!(bucket("0.0025"), 3.0);
    assert_eq!(bucket("0.005"), 4.0);
    assert_eq!(bucket("10"), 4.0);
    assert_eq!(bucket("+Inf"), 5.0);
    assert_eq!(sample(fsync, "fsync_latency_seconds_count", &[]).value, 5.0);
    let sum = sample(fsync, "fsync_latency_seconds_sum", &[]).value;
    assert!((sum - 20.003_111).abs() < 1e-9, "{sum}");
}

#[test]
fn fsync_histogram_text() {
    let metrics = Metrics::new();
    metrics.observe_fsync(Duration::from_micros(120));
    metrics.observe_fsync(Duration::from_millis(2));
    let text = metrics.render();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("fsync_latency_seconds"))
        .collect();
    expect![[r#"
        # HELP fsync_latency_seconds Time of one fsync of the transaction log.
        # TYPE fsync_latency_seconds histogram
        fsync_latency_seconds_bucket{le="0.00005"} 0
        fsync_latency_seconds_bucket{le="0.0001"} 0
        fsync_latency_seconds_bucket{le="0.00025"} 1
        fsync_latency_seconds_bucket{le="0.0005"} 1
        fsync_latency_seconds_bucket{le="0.001"} 1
        fsync_latency_seconds_bucket{le="0.0025"} 2
        fsync_latency_seconds_bucket{le="0.005"} 2
        fsync_latency_seconds_bucket{le="0.01"} 2
        fsync_latency_seconds_bucket{le="0.025"} 2
        fsync_latency_seconds_bucket{le="0.05"} 2
        fsync_latency_seconds_bucket{le="0.1"} 2
        fsync_latency_seconds_bucket{le="0.25"} 2
        fsync_latency_seconds_bucket{le="0.5"} 2
        fsync_latency_seconds_bucket{le="1"} 2
        fsync_latency_seconds_bucket{le="2.5"} 2
        fsync_latency_seconds_bucket{le="5"} 2
        fsync_latency_seconds_bucket{le="10"} 2
        fsync_latency_seconds_bucket{le="+Inf"} 2
        fsync_latency_seconds_sum 0.00212
        fsync_latency_seconds_count 2"#]]
    .assert_eq(&lines.join("\n"));
}

#[test]
fn request_latency_is_labelled_by_op_and_sorted() {
    let metrics = Metrics::new();
    metrics.observe_request("setData", Duration::from_millis(4));
    metrics.observe_request("getData", Duration::from_micros(90));
    metrics.observe_request("getData", Duration::from_micros(300));
    let families = parsed(&metrics);
    let requests = family(&families, "request_latency_seconds");
    let name = "request_latency_seconds_count";
    assert_eq!(sample(requests, name, &[("op", "getData")]).value, 2.0);
    assert_eq!(sample(requests, name, &[("op", "setData")]).value, 1.0);
    let first_op = requests.samples[0].label("op");
    assert_eq!(first_op, Some("getData"));
    let get_bucket = |le| {
        sample(
            requests,
            "request_latency_seconds_bucket",
            &[("op", "getData"), ("le", le)],
        )
    };
    assert_eq!(get_bucket("0.0001").value, 1.0);
    assert_eq!(get_bucket("0.0005").value, 2.0);
}

#[test]
fn more_ops_than_slots_overflow_into_other() {
    let metrics = Metrics::new();
    for index in 0..70 {
        let op: &'static str = Box::leak(format!("op{index}").into_boxed_str());
        metrics.observe_request(op, Duration::from_micros(100));
        metrics.observe_request(op, Duration::from_micros(100));
    }
    let families = parsed(&metrics);
    let requests = family(&families, "request_latency_seconds");
    let counts: Vec<&Sample> = requests
        .samples
        .iter()
        .filter(|s| s.name == "request_latency_seconds_count")
        .collect();
    assert_eq!(counts.len(), 65);
    let total: f64 = counts.iter().map(|s| s.value).sum();
    assert_eq!(total, 140.0);
    let other = sample(
        requests,
        "request_latency_seconds_count",
        &[("op", "other")],
    );
    assert_eq!(other.value, 12.0);
    assert_eq!(metrics.latency_summary().count, 140);
}

#[test]
fn latency_summary_in_ms_and_reset() {
    let metrics = Metrics::new();
    assert_eq!(metrics.latency_summary(), LatencySummary::default());
    metrics.observe_request("getData", Duration::from_micros(500));
    metrics.observe_request("create", Duration::from_millis(2));
    metrics.observe_request("exists", Duration::from_micros(1_000));
    let summary = metrics.latency_summary();
    assert_eq!(summary.count, 3);
    assert_eq!(summary.min_ms, 0.5);
    assert_eq!(summary.max_ms, 2.0);
    assert!((summary.avg_ms - 3.5 / 3.0).abs() < 1e-12);

    metrics.reset();
    assert_eq!(metrics.latency_summary(), LatencySummary::default());
    metrics.observe_request("getData", Duration::from_millis(7));
    let summary = metrics.latency_summary();
    assert_eq!(
        (summary.min_ms, summary.avg_ms, summary.max_ms),
        (7.0, 7.0, 7.0)
    );
    // The Prometheus histogram kept all four.
    let families = parsed(&metrics);
    let requests = family(&families, "request_latency_seconds");
    let counts: f64 = requests
        .samples
        .iter()
        .filter(|s| s.name == "request_latency_seconds_count")
        .map(|s| s.value)
        .sum();
    assert_eq!(counts, 4.0);
}

#[test]
fn server_state_marks_exactly_one_role() {
    let metrics = Metrics::new();
    assert_eq!(metrics.server_state(), ServerState::Looking);
    metrics.set_server_state(ServerState::ReadOnly);
    assert_eq!(metrics.server_state(), ServerState::ReadOnly);
    metrics.set_server_state(ServerState::Leader);
    let families = parsed(&metrics);
    let states = family(&families, "server_state");
    assert_eq!(states.samples.len(), ServerState::ALL.len());
    let on: Vec<&str> = states
        .samples
        .iter()
        .filter(|s| s.value == 1.0)
        .filter_map(|s| s.label("state"))
        .collect();
    assert_eq!(on, ["leader"]);
    let info = &family(&families, "server_info").samples[0];
    assert_eq!(info.label("version"), Some(env!("CARGO_PKG_VERSION")));
    assert_eq!(info.value, 1.0);
}

#[test]
fn zab_gauges_round_trip_and_render_exactly() {
    let metrics = Metrics::new();
    assert_eq!(metrics.zab(), ZabGauges::default());
    let zab = ZabGauges {
        epoch: 7,
        accepted_epoch: 8,
        // Above 2^53: must not go through f64.
        last_zxid: (7 << 32) | 0x1_2345 | (1 << 60),
        last_committed: (7 << 32) | 0x1_2340 | (1 << 60),
        quorum_size: 3,
        voters: 5,
        observers: 2,
        synced_learners: 4,
        leader_id: 9,
    };
    metrics.set_zab(&zab);
    assert_eq!(metrics.zab(), zab);
    let text = metrics.render();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("zab_") && !line.contains("_seconds"))
        .collect();
    expect![[r#"
        zab_epoch 7
        zab_accepted_epoch 8
        zab_last_zxid 1152921534671692613
        zab_last_committed_zxid 1152921534671692608
        zab_quorum_size 3
        zab_voters 5
        zab_observers 2
        zab_synced_learners 4
        zab_leader_id 9
        zab_syncs_total{kind="diff"} 0
        zab_syncs_total{kind="trunc"} 0
        zab_syncs_total{kind="snap"} 0
        zab_digest_mismatches_total 0"#]]
    .assert_eq(&lines.join("\n"));
    assert!(text.contains(&format!("\nzab_last_zxid {}\n", zab.last_zxid)));

    // A node that lost its leader reports 0, and the old values are gone.
    metrics.set_zab(&ZabGauges {
        leader_id: 0,
        synced_learners: 0,
        ..zab
    });
    let families = parsed(&metrics);
    assert_eq!(only_value(&families, "zab_leader_id"), 0.0);
    assert_eq!(only_value(&families, "zab_synced_learners"), 0.0);
    assert_eq!(only_value(&families, "zab_voters"), 5.0);
}

#[test]
fn learner_syncs_are_counted_by_kind() {
    let metrics = Metrics::new();
    for kind in [
        SyncKind::Diff,
        SyncKind::Diff,
        SyncKind::Snap,
        SyncKind::Diff,
    ] {
        metrics.inc_learner_sync(kind);
    }
    let counts = SyncKind::ALL.map(|kind| metrics.learner_syncs(kind));
    assert_eq!(counts, [3, 0, 1]);
    // `srst` clears only the four-letter view, and syncs are not part of it.
    metrics.reset();
    assert_eq!(metrics.learner_syncs(SyncKind::Diff), 3);
    let families = parsed(&metrics);
    let syncs = family(&families, "zab_syncs_total");
    assert_eq!(syncs.samples.len(), SyncKind::ALL.len());
    let by_kind: Vec<(&str, f64)> = syncs
        .samples
        .iter()
        .map(|s| (s.label("kind").unwrap_or_default(), s.value))
        .collect();
    assert_eq!(by_kind, [("diff", 3.0), ("trunc", 0.0), ("snap", 1.0)]);
}

#[test]
fn digest_mismatches_are_counted() {
    let metrics = Metrics::new();
    assert_eq!(metrics.digest_mismatches(), 0);
    metrics.inc_digest_mismatch();
    metrics.inc_digest_mismatch();
    assert_eq!(metrics.digest_mismatches(), 2);
    let families = parsed(&metrics);
    assert_eq!(only_value(&families, "zab_digest_mismatches_total"), 2.0);
}

#[test]
fn proposal_and_commit_latency_histograms() {
    let metrics = Metrics::new();
    metrics.observe_proposal(Duration::from_micros(400));
    metrics.observe_proposal(Duration::from_millis(3));
    metrics.observe_commit(Duration::from_micros(100));
    let text = metrics.render();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("zab_proposal_latency_seconds"))
        .collect();
    expect![[r##"
        # HELP zab_proposal_latency_seconds On the leader, time from proposing a transaction to committing it.
        # TYPE zab_proposal_latency_seconds histogram
        zab_proposal_latency_seconds_bucket{le="0.00005"} 0
        zab_proposal_latency_seconds_bucket{le="0.0001"} 0
        zab_proposal_latency_seconds_bucket{le="0.00025"} 0
        zab_proposal_latency_seconds_bucket{le="0.0005"} 1
        zab_proposal_latency_seconds_bucket{le="0.001"} 1
        zab_proposal_latency_seconds_bucket{le="0.0025"} 1
        zab_proposal_latency_seconds_bucket{le="0.005"} 2
        zab_proposal_latency_seconds_bucket{le="0.01"} 2
        zab_proposal_latency_seconds_bucket{le="0.025"} 2
        zab_proposal_latency_seconds_bucket{le="0.05"} 2
        zab_proposal_latency_seconds_bucket{le="0.1"} 2
        zab_proposal_latency_seconds_bucket{le="0.25"} 2
        zab_proposal_latency_seconds_bucket{le="0.5"} 2
        zab_proposal_latency_seconds_bucket{le="1"} 2
        zab_proposal_latency_seconds_bucket{le="2.5"} 2
        zab_proposal_latency_seconds_bucket{le="5"} 2
        zab_proposal_latency_seconds_bucket{le="10"} 2
        zab_proposal_latency_seconds_bucket{le="+Inf"} 2
        zab_proposal_latency_seconds_sum 0.0034
        zab_proposal_latency_seconds_count 2"##]]
    .assert_eq(&lines.join("\n"));

    let families = parsed(&metrics);
    let commit = family(&families, "zab_commit_latency_seconds");
    let name = "zab_commit_latency_seconds";
    let bucket = |le| sample(commit, &format!("{name}_bucket"), &[("le", le)]).value;
    assert_eq!(bucket("0.00005"), 0.0);
    assert_eq!(bucket("0.0001"), 1.0);
    assert_eq!(bucket("+Inf"), 1.0);
    assert_eq!(sample(commit, &format!("{name}_count"), &[]).value, 1.0);
    assert_eq!(sample(commit, &format!("{name}_sum"), &[]).value, 0.0001);

    // The summaries for `mntr` survive `srst`, like the histograms.
    metrics.reset();
    let proposal = metrics.proposal_latency_summary();
    assert_eq!(
        (
            proposal.count,
            proposal.min_ms,
            proposal.avg_ms,
            proposal.max_ms
        ),
        (2, 0.4, 1.7, 3.0)
    );
    let commit = metrics.commit_latency_summary();
    assert_eq!((commit.count, commit.max_ms), (1, 0.1));
}

#[test]
fn concurrent_updates_are_all_counted() {
    let metrics = Arc::new(Metrics::new());
    let ops = ["getData", "setData", "exists", "create"];
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let metrics = Arc::clone(&metrics);
            std::thread::spawn(move || {
                for i in 0..2_000u64 {
                    metrics
                        .observe_request(ops[(i % 4) as usize], Duration::from_micros(i + thread));
                    metrics.inc_packets_received();
                }
            })
        })
        .collect();
    // A scrape racing the writers must still be well formed.
    for _ in 0..20 {
        parsed(&metrics);
    }
    for thread in threads {
        thread.join().expect("writer thread");
    }
    assert_eq!(metrics.packets_received(), 8_000);
    assert_eq!(metrics.latency_summary().count, 8_000);
    let families = parsed(&metrics);
    let requests = family(&families, "request_latency_seconds");
    for op in ops {
        let count = sample(requests, "request_latency_seconds_count", &[("op", op)]);
        assert_eq!(count.value, 2_000.0, "{op}");
    }
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
    assert_eq!(escape_label_value("x\ny"), "x\\ny");
    let metrics = Metrics::new();
    metrics.observe_request("we\"ird\\op\n", Duration::from_micros(1));
    let families = parsed(&metrics);
    let requests = family(&families, "request_latency_seconds");
    assert_eq!(requests.samples[0].label("op"), Some("we\"ird\\op\n"));
}

#[test]
fn checker_rejects_malformed_text() {
    let cases = [
        ("# TYPE a histogram\na_bucket{le=\"1\"} 2\na_bucket{le=\"+Inf\"} 1\na_sum 0\na_count 1\n", "not cumulative"),
        ("# TYPE a histogram\na_bucket{le=\"1\"} 1\na_sum 0\na_count 1\n", "no +Inf"),
        ("# TYPE a histogram\na_bucket{le=\"+Inf\"} 2\na_sum 0\na_count 1\n", "_count differs"),
        ("# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\na_count 1\n", "no _sum"),
        ("# TYPE a gauge\na 1\na 2\n", "duplicate series"),
        ("a 1\n# TYPE a gauge\n", "TYPE after samples"),
        ("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n", "split in two"),
        ("# TYPE 1a gauge\n", "bad metric name"),
        ("a{l=\"x\\q\"} 1\n", "bad escape"),
        ("a one\n", "bad value"),
        ("a 1", "newline"),
    ];
    for (text, error) in cases {
        let result = expo::parse(text);
        assert!(
            result.as_ref().is_err_and(|e| e.contains(error)),
            "{text:?}: expected {error:?}, got {result:?}"
        );
    }
}
