//! Real components (the test guests in `tests/guests/`, built for wasm32-wasip2 by the
//! first test that needs them) in the real host: each world, the install-time checks, the
//! sandbox's limits, the failure policy, the cache and the fixture runner.

mod support;

use ek_plugin::fixture::{Fixture, MemEnv};
use ek_plugin::{
    CallError, CreateMode, Endpoint, HostEnv, Level, Metric, Plugin, PluginError, PodValue,
    Runtime, RuntimeConfig, ServiceRecord, TargetKind, TxnOp, Workload,
};
use std::time::{Duration, Instant};
use support::{cmd, guest, node, policy_manifest, registrar_manifest, runtime, watcher_manifest};

fn workload(name: &str) -> Workload {
    Workload {
        namespace: "default".into(),
        name: name.into(),
        current_replicas: 2,
        min_replicas: 1,
        max_replicas: 10,
        pods: Vec::new(),
        metrics: vec![Metric {
            name: "cpu".into(),
            target_kind: TargetKind::Utilization,
            target: 50.0,
            per_pod: vec![
                PodValue {
                    pod: "a".into(),
                    value: 100.0,
                },
                PodValue {
                    pod: "b".into(),
                    value: 100.0,
                },
            ],
            value: None,
        }],
        recent: Vec::new(),
        settings: Default::default(),
        now_ms: 1_000_000,
    }
}

fn create(path: &str, data: &str) -> TxnOp {
    TxnOp::Create {
        path: path.into(),
        data: data.as_bytes().to_vec(),
        mode: CreateMode::Persistent,
    }
}

fn has_log(logs: &[(Level, String)], level: Level, text: &str) -> bool {
    logs.iter()
        .any(|(l, msg)| *l == level && msg.contains(text))
}

/// Calls until the plugin is past its backoff; returns the first other result.
fn call_through_backoff(
    plugin: &mut Plugin,
    env: &MemEnv,
    command: &str,
) -> Result<ek_plugin::CallOutput, CallError> {
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        match plugin.on_changes(env, &cmd(command)) {
            Err(CallError::Backoff { retry_in }) => std::thread::sleep(retry_in),
            other => return other,
        }
        assert!(
            Instant::now() < give_up,
            "still backing off after 2 minutes"
        );
    }
}

#[test]
fn each_world_loads_and_runs() {
    let rt = runtime();
    let env = node(&[
        ("/out", ""),
        ("/scaling/web/spec", "{}"),
        ("/services/default", ""),
    ]);

    let watcher = rt
        .load(&watcher_manifest(""), &guest("watcher"))
        .expect("load the watcher");
    assert_eq!(watcher.world(), ek_plugin::World::Watcher);
    let mut watcher = Plugin::new(watcher);
    let out = watcher.on_changes(&env, &cmd("")).expect("on-changes");
    assert_eq!(out.ops, vec![create("/out/count", "1")]);
    assert!(has_log(&out.logs, Level::Info, "data-changed /cmd/ at 7"));
    env.apply(&out.ops).expect("apply");
    let out = watcher.on_changes(&env, &cmd("")).expect("on-changes");
    assert_eq!(
        out.ops,
        vec![TxnOp::Set {
            path: "/out/count".into(),
            data: b"2".to_vec(),
            version: Some(0)
        }]
    );

    let policy = rt
        .load(&policy_manifest(""), &guest("policy"))
        .expect("load the policy");
    let (decision, out) = Plugin::new(policy)
        .decide(&env, &workload("web"))
        .expect("decide");
    assert_eq!(decision.desired_replicas, 4);
    assert_eq!(decision.recommendation, 4);
    assert_eq!(decision.reason, "ratio 2.00");
    assert!(out.ops.is_empty());
    assert!(has_log(&out.logs, Level::Debug, "spec {}"));

    let registrar = rt
        .load(&registrar_manifest(""), &guest("registrar"))
        .expect("load the registrar");
    let records = vec![ServiceRecord {
        namespace: "default".into(),
        name: "web".into(),
        endpoints: vec![
            Endpoint {
                address: "10.0.0.1".into(),
                port: 80,
                ready: true,
                node: None,
            },
            Endpoint {
                address: "10.0.0.2".into(),
                port: 80,
                ready: false,
                node: Some("edge-2".into()),
            },
        ],
        labels: Default::default(),
    }];
    let out = Plugin::new(registrar)
        .reconcile(&env, "static", &records)
        .expect("reconcile");
    assert_eq!(
        out.ops,
        vec![create("/services/default/web", "10.0.0.1:80")]
    );
}

#[test]
fn a_call_of_another_world_is_refused_without_running() {
    let rt = runtime();
    let env = node(&[]);
    let mut policy = Plugin::new(
        rt.load(&policy_manifest(""), &guest("policy"))
            .expect("load"),
    );
    assert_eq!(
        policy.on_changes(&env, &cmd("count")),
        Err(CallError::WrongWorld)
    );
    assert_eq!(policy.stats().calls, 0);
}

#[test]
fn a_component_of_another_world_is_refused_naming_the_missing_export() {
    let rt = runtime();
    let err = rt
        .load(&watcher_manifest(""), &guest("policy"))
        .expect_err("a policy is not a watcher");
    assert!(matches!(err, PluginError::WrongWorld(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("`on-changes`"), "{text}");
    assert!(text.contains("looks like a scaling-policy"), "{text}");

    let err = rt
        .load(&watcher_manifest(""), &guest("no-export"))
        .expect_err("exports nothing a plugin needs");
    assert!(matches!(err, PluginError::WrongWorld(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("does not export `on-changes`") && text.contains("hello"),
        "{text}"
    );
}

#[test]
fn imports_beyond_the_allow_list_are_refused() {
    let rt = runtime();
    // std::net pulls in wasi:sockets.
    let err = rt
        .load(&watcher_manifest(""), &guest("sockets"))
        .expect_err("sockets are never granted");
    assert!(matches!(err, PluginError::Import(_)), "{err}");
    assert!(err.to_string().contains("wasi:sockets/"), "{err}");

    // A scaling policy that imports txn.
    let err = rt
        .load(&policy_manifest(""), &guest("policy-txn"))
        .expect_err("a scaling policy cannot write");
    assert!(matches!(err, PluginError::Import(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("edgekeeper:plugin/txn@0.1.0") && text.contains("scaling-policy"),
        "{text}"
    );
}

#[test]
fn a_plugin_built_against_another_wit_version_is_refused_naming_both() {
    let err = runtime()
        .load(&watcher_manifest(""), &guest("wit-future"))
        .expect_err("a 0.2 plugin on a 0.1 host");
    assert!(matches!(err, PluginError::WitVersion(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("edgekeeper:plugin/log@0.2.0")
            && text.contains("built against edgekeeper:plugin@0.2.0")
            && text.contains("offers edgekeeper:plugin@0.1.0"),
        "{text}"
    );
}

#[test]
fn bytes_that_are_not_the_manifests_component_are_refused() {
    let rt = runtime();
    let bytes = guest("policy");
    let mut hashed = policy_manifest("");
    hashed.sha256 = Some("0".repeat(64));
    let err = rt.load(&hashed, &bytes).expect_err("wrong hash");
    assert!(matches!(err, PluginError::Hash { .. }), "{err}");
    // The right hash, in either case, loads.
    hashed.sha256 = Some(ek_plugin::sha256_hex(&bytes).to_uppercase());
    rt.load(&hashed, &bytes).expect("the right hash");

    let err = rt
        .load(&policy_manifest(""), b"\0asm\x01\0\0\0")
        .expect_err("a core module");
    assert!(matches!(err, PluginError::NotAComponent(_)), "{err}");
    let err = rt
        .load(&policy_manifest(""), b"not wasm at all")
        .expect_err("not wasm");
    assert!(matches!(err, PluginError::NotAComponent(_)), "{err}");
    let mut broken = bytes.clone();
    broken.truncate(bytes.len() / 2);
    let err = rt
        .load(&policy_manifest(""), &broken)
        .expect_err("a truncated component");
    assert!(matches!(err, PluginError::Compile(_)), "{err}");
}

#[test]
fn files_need_a_grant_and_stay_inside_it() {
    let rt = runtime();
    let err = rt
        .load(&watcher_manifest(""), &guest("files"))
        .expect_err("no [files] grant");
    assert!(matches!(err, PluginError::Import(_)), "{err}");
    assert!(err.to_string().contains("wasi:filesystem"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    let granted = watcher_manifest(&format!(
        "[files]\nhost-dir = {:?}\nguest-dir = \"/out\"\n",
        dir.path().display().to_string()
    ));
    let loaded = rt.load(&granted, &guest("files")).expect("granted");
    Plugin::new(loaded)
        .on_changes(&node(&[]), &cmd("x"))
        .expect("writes its file");
    let written = std::fs::read_to_string(dir.path().join("zxid-7")).expect("the file");
    assert_eq!(written, "1");
}

#[test]
fn a_runaway_watcher_times_out_backs_off_recovers_and_is_suspended() {
    let rt = runtime();
    let env = node(&[("/out", "")]);
    let loaded = rt
        .load(
            &watcher_manifest("[limits]\ntimeout-ms = 30\n"),
            &guest("watcher"),
        )
        .expect("load");
    let mut plugin = Plugin::new(loaded);

    assert_eq!(
        plugin.on_changes(&env, &cmd("spin")),
        Err(CallError::Timeout)
    );
    assert_eq!(plugin.status().consecutive_failures, 1);
    // Right after a failure, calls are refused without running.
    let calls = plugin.stats().calls;
    match plugin.on_changes(&env, &cmd("count")) {
        Err(CallError::Backoff { retry_in }) => assert!(retry_in <= ek_plugin::FIRST_BACKOFF),
        other => panic!("expected a backoff, got {other:?}"),
    }
    assert_eq!(plugin.stats().calls, calls);
    // After the backoff a fresh instance serves.
    let out = call_through_backoff(&mut plugin, &env, "count").expect("recovered");
    assert!(has_log(&out.logs, Level::Info, "call 1"), "{:?}", out.logs);
    assert_eq!(plugin.status().state, "running");
    assert_eq!(plugin.status().consecutive_failures, 0);

    // Five failures in a row suspend it.
    for _ in 0..ek_plugin::SUSPEND_AFTER {
        assert_eq!(
            call_through_backoff(&mut plugin, &env, "spin"),
            Err(CallError::Timeout)
        );
    }
    match plugin.on_changes(&env, &cmd("count")) {
        Err(CallError::Suspended { reason }) => {
            assert!(reason.contains("5 failures in a row"), "{reason}");
            assert!(reason.contains("timed out"), "{reason}");
        }
        other => panic!("expected a suspension, got {other:?}"),
    }
    let status = plugin.status();
    assert_eq!(status.state, "suspended");
    assert_eq!(status.timeouts, 6);
    assert_eq!(status.traps, 0);
    // An operator's resume lifts it.
    plugin.resume();
    plugin.on_changes(&env, &cmd("count")).expect("resumed");
}

#[test]
fn a_runaway_policy_times_out() {
    let rt = runtime();
    let loaded = rt
        .load(
            &policy_manifest("[limits]\ntimeout-ms = 30\n"),
            &guest("policy"),
        )
        .expect("load");
    let mut plugin = Plugin::new(loaded);
    let env = node(&[]);
    assert_eq!(
        plugin.decide(&env, &workload("spin")).map(|(d, _)| d),
        Err(CallError::Timeout)
    );
    assert_eq!(plugin.stats().timeouts, 1);
}

#[test]
fn a_panic_is_a_trap_with_the_panic_message() {
    let rt = runtime();
    let env = node(&[("/out", "")]);
    let mut watcher = Plugin::new(
        rt.load(&watcher_manifest(""), &guest("watcher"))
            .expect("load"),
    );
    match watcher.on_changes(&env, &cmd("panic")) {
        Err(CallError::Trap { message }) => {
            assert!(message.contains("boom from guest at zxid 7"), "{message}");
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    let status = watcher.status();
    assert_eq!(status.traps, 1);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("boom from guest")),
        "{status:?}"
    );
    // The panic message also reaches the call's logs.
    assert!(has_log(watcher.last_logs(), Level::Warn, "boom from guest"));
    call_through_backoff(&mut watcher, &env, "count").expect("a fresh instance serves");

    let mut policy = Plugin::new(
        rt.load(&policy_manifest(""), &guest("policy"))
            .expect("load"),
    );
    match policy.decide(&env, &workload("panic")) {
        Err(CallError::Trap { message }) => {
            assert!(message.contains("policy panic deciding panic"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn a_memory_hog_is_stopped_and_the_node_is_fine() {
    let rt = runtime();
    let env = node(&[("/out", "")]);
    let loaded = rt
        .load(
            &watcher_manifest("[limits]\nmemory-mib = 16\n"),
            &guest("watcher"),
        )
        .expect("load");
    let mut plugin = Plugin::new(loaded);
    assert_eq!(
        plugin.on_changes(&env, &cmd("hog")),
        Err(CallError::OutOfMemory)
    );
    let status = plugin.status();
    assert_eq!(status.oom, 1);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("memory allocation")),
        "{status:?}"
    );
    // Asking politely (try_reserve): the guest sees the refusal and reports it.
    match call_through_backoff(&mut plugin, &env, "try-hog") {
        Err(CallError::Plugin(message)) => {
            assert!(message.contains("allocation failed after"), "{message}")
        }
        other => panic!("expected the guest's own error, got {other:?}"),
    }
    // The node (this process) is fine, and so is the plugin once the hoard is gone.
    let ballast = vec![1u8; 64 << 20];
    assert_eq!(ballast.iter().map(|b| u64::from(*b)).sum::<u64>(), 64 << 20);
    call_through_backoff(&mut plugin, &env, "count").expect("serves again");
}

#[test]
fn a_warm_watcher_instance_is_reused_until_it_is_worn() {
    let rt = runtime();
    let env = node(&[("/out", "")]);
    let loaded = rt
        .load(
            &watcher_manifest("[limits]\nmemory-mib = 16\n[config]\ngrow-mib = \"13\"\n"),
            &guest("watcher"),
        )
        .expect("load");
    let mut plugin = Plugin::new(loaded);
    for n in 1..=3 {
        let out = plugin.on_changes(&env, &cmd("count")).expect("count");
        assert!(
            has_log(&out.logs, Level::Info, &format!("call {n}")),
            "{:?}",
            out.logs
        );
    }
    // Past 3/4 of its memory cap, the instance is replaced after the call.
    let out = plugin.on_changes(&env, &cmd("grow")).expect("grow");
    assert!(has_log(&out.logs, Level::Info, "grew by 13 MiB"));
    let out = plugin.on_changes(&env, &cmd("count")).expect("count");
    assert!(has_log(&out.logs, Level::Info, "call 1"), "{:?}", out.logs);
    assert_eq!(plugin.status().consecutive_failures, 0);
}

#[test]
fn writes_and_reads_outside_the_grant_are_refused() {
    let rt = runtime();
    let env = node(&[("/out", ""), ("/secret", "s")]);
    let mut plugin = Plugin::new(
        rt.load(&watcher_manifest(""), &guest("watcher"))
            .expect("load"),
    );
    let refusals = [
        ("out-of-grant", "OutOfScope(\"/forbidden/x\")"),
        ("read-outside", "OutOfScope(\"/secret\")"),
        ("bad-path", "BadArguments"),
        ("big-write", "TooLarge(1048576)"),
        (
            "many-ops",
            "op 1000 refused: TreeError::BadArguments(\"more than 1000 ops",
        ),
    ];
    for (command, refusal) in refusals {
        match plugin.on_changes(&env, &cmd(command)) {
            Err(CallError::Plugin(message)) => {
                assert!(message.contains(refusal), "{command}: {message}")
            }
            other => panic!("{command}: expected the refusal, got {other:?}"),
        }
    }
    // Refused host calls are the plugin's business, not failures of the sandbox.
    assert_eq!(plugin.status().consecutive_failures, 0);
    assert_eq!(plugin.stats().errors, refusals.len() as u64);

    // An every-node watcher may write only with every-node-writes.
    let mut everywhere = watcher_manifest("");
    everywhere.placement = Some(ek_plugin::Placement::EveryNode);
    let mut plugin = Plugin::new(rt.load(&everywhere, &guest("watcher")).expect("load"));
    match plugin.on_changes(&env, &cmd("")) {
        Err(CallError::Plugin(message)) => {
            assert!(message.contains("OutOfScope(\"/out/count\")"), "{message}")
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    everywhere.every_node_writes = true;
    let mut plugin = Plugin::new(rt.load(&everywhere, &guest("watcher")).expect("load"));
    let out = plugin.on_changes(&env, &cmd("")).expect("may write");
    assert_eq!(out.ops, vec![create("/out/count", "1")]);
}

#[test]
fn writes_are_discarded_when_the_export_returns_an_error() {
    let rt = runtime();
    let env = node(&[("/out", ""), ("/services/default", "")]);
    let mut watcher = Plugin::new(
        rt.load(&watcher_manifest(""), &guest("watcher"))
            .expect("load"),
    );
    assert_eq!(
        watcher.on_changes(&env, &cmd("err-after-write")),
        Err(CallError::Plugin("changed my mind".into()))
    );
    // The next call starts with an empty buffer.
    let out = watcher.on_changes(&env, &cmd("")).expect("ok");
    assert_eq!(out.ops, vec![create("/out/count", "1")]);

    let mut registrar = Plugin::new(
        rt.load(&registrar_manifest(""), &guest("registrar"))
            .expect("load"),
    );
    let records = vec![ServiceRecord {
        namespace: "default".into(),
        name: "web".into(),
        endpoints: Vec::new(),
        labels: Default::default(),
    }];
    assert_eq!(
        registrar.reconcile(&env, "err", &records),
        Err(CallError::Plugin("source err always fails".into()))
    );
    let out = registrar.reconcile(&env, "ok", &records).expect("ok");
    assert_eq!(out.ops, vec![create("/services/default/web", "")]);
}

#[test]
fn output_is_captured_and_logs_are_bounded() {
    let rt = runtime();
    let env = node(&[("/out", "")]);
    let mut plugin = Plugin::new(
        rt.load(&watcher_manifest(""), &guest("watcher"))
            .expect("load"),
    );
    let out = plugin.on_changes(&env, &cmd("print")).expect("print");
    assert!(
        has_log(&out.logs, Level::Info, "hello on stdout"),
        "{:?}",
        out.logs
    );
    assert!(
        has_log(&out.logs, Level::Warn, "hello on stderr"),
        "{:?}",
        out.logs
    );
    // The next call's log holds only its own output.
    let out = plugin.on_changes(&env, &cmd("count")).expect("count");
    assert!(!has_log(&out.logs, Level::Info, "hello"), "{:?}", out.logs);

    let out = plugin.on_changes(&env, &cmd("flood")).expect("flood");
    assert_eq!(out.logs.len(), 257, "256 entries, then the truncation mark");
    assert_eq!(
        out.logs.last(),
        Some(&(Level::Warn, "log truncated".to_owned()))
    );
    let bytes: usize = out.logs.iter().map(|(_, msg)| msg.len()).sum();
    assert!(bytes <= 64 * 1024 + 64, "{bytes}");
    // A flood of output wears the instance out: the next call gets a fresh one, and
    // printing still works.
    let out = plugin.on_changes(&env, &cmd("print")).expect("print");
    assert!(
        has_log(&out.logs, Level::Info, "hello on stdout"),
        "{:?}",
        out.logs
    );
}

#[test]
fn config_comes_from_the_manifest_and_the_clock_from_the_node() {
    let rt = runtime();
    let env = node(&[("/out", "")]);
    let loaded = rt
        .load(
            &watcher_manifest("[config]\ncolour = \"blue\"\nsize = \"3\"\n"),
            &guest("watcher"),
        )
        .expect("load");
    let mut plugin = Plugin::new(loaded);
    let out = plugin.on_changes(&env, &cmd("config")).expect("config");
    assert!(has_log(&out.logs, Level::Info, "config colour=blue"));
    assert!(has_log(&out.logs, Level::Info, "config size=3"));
    let out = plugin.on_changes(&env, &cmd("clock")).expect("clock");
    assert!(
        has_log(&out.logs, Level::Info, &format!("now {}", env.now_ms())),
        "{:?}",
        out.logs
    );
}

#[test]
fn compiled_components_are_cached_and_a_corrupt_cache_is_recompiled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cached = |dir: &std::path::Path| {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.to_owned()),
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    };
    let bytes = guest("policy");
    let manifest = policy_manifest("");
    let rt = cached(dir.path());
    let first = rt.load(&manifest, &bytes).expect("load");
    assert!(!first.from_cache());
    let entry = dir.path().join(format!(
        "{}-{}.cwasm",
        ek_plugin::sha256_hex(&bytes),
        rt.compatibility_hash()
    ));
    assert!(entry.is_file(), "{} missing", entry.display());

    // A restart (another runtime) loads the cached compilation.
    let second = cached(dir.path()).load(&manifest, &bytes).expect("load");
    assert!(second.from_cache, "a restart loads the cached compilation");

    // Corrupt it: the checksum catches it, the component is recompiled and cached anew.
    let mut data = std::fs::read(&entry).expect("read");
    let middle = data.len() / 2;
    data[middle] ^= 0xff;
    std::fs::write(&entry, data).expect("write");
    let third = cached(dir.path()).load(&manifest, &bytes).expect("load");
    assert!(!third.from_cache());
    let (decision, _) = Plugin::new(third)
        .decide(&node(&[]), &workload("web"))
        .expect("the recompiled plugin works");
    assert_eq!(decision.desired_replicas, 4);
    assert!(cached(dir.path())
        .load(&manifest, &bytes)
        .expect("load")
        .from_cache());

    // An engine with other settings (fuel) has another key: no stale code is loaded.
    let fuel = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_owned()),
        fuel: true,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    assert_ne!(fuel.compatibility_hash(), rt.compatibility_hash());
    assert!(!fuel.load(&manifest, &bytes).expect("load").from_cache());
}

#[test]
fn fuel_is_a_deterministic_meter_in_test_mode() {
    let rt = Runtime::new(RuntimeConfig {
        fuel: true,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let env = node(&[("/scaling/web/spec", "{}")]);
    let mut plugin = Plugin::new(
        rt.load(&policy_manifest(""), &guest("policy"))
            .expect("load"),
    );
    let (_, first) = plugin.decide(&env, &workload("web")).expect("decide");
    let (_, second) = plugin.decide(&env, &workload("web")).expect("decide");
    let fuel = first.fuel_used.expect("metered");
    assert!(fuel > 1_000, "{fuel}");
    assert_eq!(second.fuel_used, Some(fuel));
    // Without metering, no number.
    let mut plugin = Plugin::new(
        runtime()
            .load(&policy_manifest(""), &guest("policy"))
            .expect("load"),
    );
    assert_eq!(
        plugin
            .decide(&env, &workload("web"))
            .expect("decide")
            .1
            .fuel_used,
        None
    );
}

#[test]
fn the_fixture_runner_applies_writes_between_calls_and_checks_expectations() {
    let rt = runtime();
    let loaded = rt
        .load(&watcher_manifest(""), &guest("watcher"))
        .expect("load");
    let text = r#"{
        "tree": [ { "path": "/out/seed", "data": "x" }, { "path": "/cmd/go" } ],
        "config": { "colour": "red" },
        "calls": [
            { "on-changes": { "snapshot": true, "zxid": 5, "changes": [
                { "kind": "created", "path": "/out/seed", "zxid": 3 } ] } },
            { "on-changes": { "zxid": 6, "changes": [
                { "kind": "data-changed", "path": "/out/seed", "zxid": 6 } ] } },
            { "on-changes": { "zxid": 7, "changes": [
                { "kind": "data-changed", "path": "/cmd/config", "zxid": 7 } ] } },
            { "on-changes": { "zxid": 8, "changes": [
                { "kind": "data-changed", "path": "/cmd/err-after-write", "zxid": 8 } ] } }
        ],
        "expect": [
            { "ops": [ { "op": "create", "path": "/out/count", "data": "1", "mode": "persistent" } ],
              "logs-contain": [ "created /out/seed at 3 (version 0)" ] },
            { "ops": [ { "op": "set", "path": "/out/count", "data": "2", "version": 0 } ] },
            { "ok": true, "logs-contain": [ "config colour=red" ] },
            { "error": "changed my mind" }
        ]
    }"#;
    let fixture: Fixture = serde_json::from_str(text).expect("fixture");
    let mut out = Vec::new();
    let report = ek_plugin::fixture::run(&rt, &loaded, &fixture, &mut out).expect("run");
    assert_eq!(report.calls, 4);
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    let lines: Vec<serde_json::Value> = String::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["call"], 0);
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(
        lines[0]["ops"][0],
        serde_json::json!({"op":"create","path":"/out/count","data":"1","mode":"persistent"})
    );
    assert_eq!(lines[3]["ok"], false);
    assert!(lines[3]["error"]
        .as_str()
        .is_some_and(|e| e.contains("changed my mind")));

    // Expectations that do not hold are reported, one line each.
    let wrong: Fixture = serde_json::from_str(
        r#"{ "calls": [ { "on-changes": { "zxid": 1, "changes": [] } } ],
             "expect": [ { "ops": [ { "op": "delete", "path": "/out/count" } ],
                           "logs-contain": [ "never logged" ] } ] }"#,
    )
    .expect("fixture");
    let report = ek_plugin::fixture::run(&rt, &loaded, &wrong, &mut Vec::new()).expect("run");
    assert_eq!(report.mismatches.len(), 2, "{:?}", report.mismatches);
    assert!(report.mismatches[0].starts_with("call 0: expected ops"));

    // A call of another world is an error of the fixture.
    let policy_call: Fixture = serde_json::from_str(
        r#"{ "calls": [ { "decide": { "name": "web", "current-replicas": 1,
              "min-replicas": 1, "max-replicas": 3 } } ] }"#,
    )
    .expect("fixture");
    let err = ek_plugin::fixture::run(&rt, &loaded, &policy_call, &mut Vec::new())
        .expect_err("a watcher cannot decide");
    assert!(err.to_string().contains("call 0"), "{err}");
}

#[test]
fn the_fixture_runner_reports_decisions() {
    let rt = runtime();
    let loaded = rt
        .load(&policy_manifest(""), &guest("policy"))
        .expect("load");
    let fixture: Fixture = serde_json::from_str(
        r#"{ "calls": [ { "decide": { "namespace": "default", "name": "web", "current-replicas": 2,
                  "min-replicas": 1, "max-replicas": 10,
                  "pods": [ { "name": "web-a", "ready": true } ],
                  "metrics": [ { "name": "cpu", "target-kind": "utilization", "target": 50,
                                 "per-pod": [ { "pod": "web-a", "value": 90 } ] } ],
                  "recent": [], "settings": { "tolerance": "0.1" }, "now-ms": 1000 } },
                { "decide": { "name": "err", "current-replicas": 1, "min-replicas": 1,
                  "max-replicas": 3 } } ],
             "expect": [ { "decision": { "desired-replicas": 4, "reason": "ratio 1.80" } },
                         { "ok": false, "error": "no usable metric" } ] }"#,
    )
    .expect("fixture");
    let mut out = Vec::new();
    let report = ek_plugin::fixture::run(&rt, &loaded, &fixture, &mut out).expect("run");
    assert!(report.mismatches.is_empty(), "{:?}", report.mismatches);
    let first: serde_json::Value =
        serde_json::from_slice(out.split(|b| *b == b'\n').next().expect("a line")).expect("JSON");
    assert_eq!(first["decision"]["desired-replicas"], 4);
}

#[test]
fn status_and_metrics_report_the_counters() {
    let rt = runtime();
    let env = node(&[("/out", "")]);
    let mut plugin = Plugin::new(
        rt.load(&watcher_manifest(""), &guest("watcher"))
            .expect("load"),
    );
    plugin.on_changes(&env, &cmd("count")).expect("count");
    plugin.on_changes(&env, &cmd("count")).expect("count");
    let _ = plugin.on_changes(&env, &cmd("read-outside"));
    let status = serde_json::to_value(plugin.status()).expect("JSON");
    assert_eq!(status["name"], "w");
    assert_eq!(status["world"], "watcher");
    assert_eq!(status["state"], "running");
    assert_eq!(status["calls"], 3);
    assert_eq!(status["errors"], 1);
    assert!(status["p99-call-ms"].as_f64().is_some_and(|ms| ms > 0.0));
    assert!(status["last-error"]
        .as_str()
        .is_some_and(|e| e.contains("OutOfScope")));

    let mut text = String::new();
    plugin.render_prometheus(&mut text);
    assert!(
        text.contains("edgekeeper_plugin_calls_total{plugin=\"w\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("edgekeeper_plugin_errors_total{plugin=\"w\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("edgekeeper_plugin_timeouts_total{plugin=\"w\"} 0\n"),
        "{text}"
    );
    assert!(
        text.contains("edgekeeper_plugin_call_duration_seconds_count{plugin=\"w\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "edgekeeper_plugin_call_duration_seconds_bucket{plugin=\"w\",le=\"+Inf\"} 3\n"
        ),
        "{text}"
    );
    // Several plugins: each family once.
    let mut text = String::new();
    ek_plugin::render_prometheus(&[plugin.stats(), plugin.stats()], &mut text);
    assert_eq!(
        text.matches("# TYPE edgekeeper_plugin_calls_total counter")
            .count(),
        1
    );
}

#[test]
fn a_plugin_can_be_called_from_many_threads_one_at_a_time() {
    let rt = runtime();
    let loaded = rt
        .load(&policy_manifest(""), &guest("policy"))
        .expect("load");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let loaded = loaded.clone();
            std::thread::spawn(move || {
                let env = node(&[]);
                let mut plugin = Plugin::new(loaded);
                for _ in 0..10 {
                    let (decision, _) = plugin.decide(&env, &workload("web")).expect("decide");
                    assert_eq!(decision.desired_replicas, 4);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    // Loaded is cheap to share, and the manifest comes along.
    assert_eq!(loaded.manifest().name, "p");
}
