//! Calls into a loaded plugin: one store per instance, deadlines, memory caps, the
//! failure policy (drop, back off, re-instantiate, suspend) and the per-plugin counters.

use crate::bindings::{policy, registrar, types as wit, watcher};
use crate::host::{stat_to_wit, HostEnv, State};
use crate::runtime::{Loaded, Pre};
use crate::types::{
    ChangeBatch, ChangeKind, Decision, Level, ServiceRecord, TargetKind, TxnOp, Workload,
};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Store, StoreLimitsBuilder, Trap};

/// Consecutive failures after which a plugin is suspended.
pub const SUSPEND_AFTER: u32 = 5;
/// How long a suspension lasts before the plugin gets one more chance (a new version or
/// [`Plugin::resume`] lifts it at once).
pub const SUSPEND_FOR: Duration = Duration::from_secs(300);
/// First backoff after a failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A warm watcher instance is replaced after this many calls.
const RECYCLE_AFTER_CALLS: u64 = 10_000;
/// Fuel given to each call when the runtime meters fuel (a meter, not a limit).
const FUEL_PER_CALL: u64 = 50_000_000_000;
/// Upper bounds (seconds) of the call-duration histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// What a successful call produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    /// The buffered writes, to submit as one multi.
    pub ops: Vec<TxnOp>,
    /// What the plugin logged (and wrote to stdout/stderr).
    pub logs: Vec<(Level, String)>,
    /// Fuel used, when the runtime meters it.
    pub fuel_used: Option<u64>,
    /// Wall time of the call.
    pub elapsed: Duration,
}

/// Why a call produced nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The guest trapped (a panic is an `unreachable` trap; its message follows).
    #[error("trap: {message}")]
    Trap {
        /// The trap and what the guest printed to stderr.
        message: String,
    },
    /// The call ran past its deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The guest could not get the memory it needed.
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    /// The export returned an error; its writes were discarded.
    #[error("the plugin returned an error: {0}")]
    Plugin(String),
    /// Too many failures in a row: not called until a new version is loaded.
    #[error("suspended: {reason}")]
    Suspended {
        /// The failure that suspended it.
        reason: String,
    },
    /// Failed recently: not called until the backoff passes.
    #[error("backing off for {retry_in:?} after a failure")]
    Backoff {
        /// Time left.
        retry_in: Duration,
    },
    /// The call does not belong to the plugin's world.
    #[error("a {0} plugin has no such export")]
    WrongWorld(&'static str),
    /// The host could not make the call.
    #[error("host error: {0}")]
    Host(String),
}

impl CallError {
    /// True for failures that poison the instance and count toward suspension.
    fn is_failure(&self) -> bool {
        matches!(
            self,
            CallError::Trap { .. }
                | CallError::Timeout(_)
                | CallError::OutOfMemory(_)
                | CallError::Host(_)
        )
    }
}

/// The counters of one plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PluginStats {
    /// The plugin's name.
    pub name: String,
    pub calls: u64,
    pub errors: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub oom: u64,
    /// Cumulative counts per bucket of [`BUCKETS`], then +Inf.
    #[serde(skip)]
    pub buckets: [u64; 13],
    /// Sum of call durations, seconds.
    pub duration_sum: f64,
}

/// What a plugin is doing, for its status node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PluginStatus {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub world: crate::manifest::World,
    /// `running`, `backoff` or `suspended`.
    pub state: &'static str,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub calls: u64,
    pub errors: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub oom: u64,
    pub mean_call_ms: f64,
}

/// One instance: its store and its bindings.
pub(crate) struct Instance {
    store: Store<State>,
    kind: Bound,
    calls: u64,
}

enum Bound {
    Watcher(watcher::Watcher),
    Policy(policy::ScalingPolicy),
    Registrar(registrar::Registrar),
}

impl Instance {
    pub(crate) fn new(loaded: &Loaded) -> Result<Instance, String> {
        let manifest = loaded.manifest.clone();
        let limits = StoreLimitsBuilder::new()
            .memory_size(manifest.effective_memory_bytes())
            .trap_on_grow_failure(false)
            .instances(64)
            .tables(64)
            .memories(16)
            .table_elements(1_000_000)
            .build();
        let state = State::new(manifest, limits).map_err(|err| err.to_string())?;
        let engine = &loaded.runtime.inner.engine;
        let mut store = Store::new(engine, state);
        store.limiter(|state| &mut state.limits);
        if loaded.runtime.inner.config.fuel {
            store
                .set_fuel(FUEL_PER_CALL)
                .map_err(|err| format!("{err:?}"))?;
        }
        // Instantiation runs guest code (start functions): bound it too.
        store.set_epoch_deadline(ticks(&loaded.runtime, Duration::from_secs(5)));
        let kind = match &loaded.pre {
            Pre::Watcher(pre) => pre.instantiate(&mut store).map(Bound::Watcher),
            Pre::Policy(pre) => pre.instantiate(&mut store).map(Bound::Policy),
            Pre::Registrar(pre) => pre.instantiate(&mut store).map(Bound::Registrar),
        }
        .map_err(|err| format!("cannot instantiate: {}", describe(&err)))?;
        Ok(Instance {
            store,
            kind,
            calls: 0,
        })
    }
}

fn ticks(runtime: &crate::Runtime, timeout: Duration) -> u64 {
    let tick = runtime
        .inner
        .config
        .epoch_tick
        .max(Duration::from_millis(1));
    (timeout.as_nanos() / tick.as_nanos()) as u64 + 1
}

fn describe(err: &wasmtime::Error) -> String {
    format!("{:?}", err.root_cause())
}

/// A loaded plugin with its failure policy and counters.
pub struct Plugin {
    loaded: Loaded,
    instance: Option<Instance>,
    consecutive_failures: u32,
    retry_at: Option<Instant>,
    suspended: Option<String>,
    suspended_until: Option<Instant>,
    last_error: Option<String>,
    stats: PluginStats,
}

impl Plugin {
    /// Wraps a loaded component; the first call instantiates it.
    pub fn new(loaded: Loaded) -> Plugin {
        let stats = PluginStats {
            name: loaded.manifest.name.clone(),
            ..PluginStats::default()
        };
        Plugin {
            loaded,
            instance: None,
            consecutive_failures: 0,
            retry_at: None,
            suspended: None,
            suspended_until: None,
            last_error: None,
            stats,
        }
    }

    /// What it was loaded from.
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// Lifts a suspension (an operator's decision).
    pub fn resume(&mut self) {
        self.suspended = None;
        self.suspended_until = None;
        self.retry_at = None;
        self.consecutive_failures = 0;
    }

    /// The counters.
    pub fn stats(&self) -> PluginStats {
        self.stats.clone()
    }

    /// The status to report.
    pub fn status(&self) -> PluginStatus {
        let state = if self.suspended.is_some() {
            "suspended"
        } else if self.retry_at.is_some_and(|at| at > Instant::now()) {
            "backoff"
        } else {
            "running"
        };
        let s = &self.stats;
        PluginStatus {
            name: self.loaded.manifest.name.clone(),
            version: self.loaded.manifest.version.clone(),
            sha256: self.loaded.sha256().to_owned(),
            world: self.loaded.world(),
            state,
            last_error: self.last_error.clone(),
            consecutive_failures: self.consecutive_failures,
            calls: s.calls,
            errors: s.errors,
            traps: s.traps,
            timeouts: s.timeouts,
            oom: s.oom,
            mean_call_ms: if s.calls == 0 {
                0.0
            } else {
                s.duration_sum * 1000.0 / s.calls as f64
            },
        }
    }

    /// Hands a watcher a batch of changes.
    pub fn on_changes(
        &mut self,
        env: &Arc<dyn HostEnv>,
        batch: &ChangeBatch,
    ) -> Result<CallOutput, CallError> {
        let input = watcher::ChangeBatch {
            snapshot: batch.snapshot,
            zxid: batch.zxid,
            changes: batch
                .changes
                .iter()
                .map(|change| wit::Change {
                    kind: match change.kind {
                        ChangeKind::Created => wit::ChangeKind::Created,
                        ChangeKind::Deleted => wit::ChangeKind::Deleted,
                        ChangeKind::DataChanged => wit::ChangeKind::DataChanged,
                    },
                    path: change.path.clone(),
                    zxid: change.zxid,
                    stat: change.stat.map(stat_to_wit),
                })
                .collect(),
        };
        self.call(env, |instance| match &instance.kind {
            Bound::Watcher(bound) => Ok(bound
                .call_on_changes(&mut instance.store, &input)
                .map(|result| result.map(|()| None::<()>))),
            _ => Err(CallError::WrongWorld(instance.world_name())),
        })
        .map(|(_, output)| output)
    }

    /// Asks a scaling policy for a decision.
    pub fn decide(
        &mut self,
        env: &Arc<dyn HostEnv>,
        workload: &Workload,
    ) -> Result<(Decision, CallOutput), CallError> {
        let input = policy::Workload {
            namespace: workload.namespace.clone(),
            name: workload.name.clone(),
            current_replicas: workload.current_replicas,
            min_replicas: workload.min_replicas,
            max_replicas: workload.max_replicas,
            pods: workload
                .pods
                .iter()
                .map(|pod| policy::Pod {
                    name: pod.name.clone(),
                    ready: pod.ready,
                })
                .collect(),
            metrics: workload
                .metrics
                .iter()
                .map(|metric| policy::Metric {
                    name: metric.name.clone(),
                    target_kind: match metric.target_kind {
                        TargetKind::Utilization => policy::TargetKind::Utilization,
                        TargetKind::AverageValue => policy::TargetKind::AverageValue,
                        TargetKind::Value => policy::TargetKind::Value,
                    },
                    target: metric.target,
                    per_pod: metric
                        .per_pod
                        .iter()
                        .map(|sample| policy::PodValue {
                            pod: sample.pod.clone(),
                            value: sample.value,
                        })
                        .collect(),
                    value: metric.value,
                })
                .collect(),
            recent: workload
                .recent
                .iter()
                .map(|past| policy::PastDecision {
                    at_ms: past.at_ms,
                    recommendation: past.recommendation,
                    desired_replicas: past.desired_replicas,
                })
                .collect(),
            settings: workload
                .settings
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            now_ms: workload.now_ms,
        };
        let (decision, output) = self.call(env, |instance| match &instance.kind {
            Bound::Policy(bound) => Ok(bound
                .call_decide(&mut instance.store, &input)
                .map(|result| result.map(Some))),
            _ => Err(CallError::WrongWorld(instance.world_name())),
        })?;
        let decision = decision.ok_or_else(|| CallError::Host("no decision".into()))?;
        Ok((
            Decision {
                desired_replicas: decision.desired_replicas,
                recommendation: decision.recommendation,
                reason: decision.reason,
            },
            output,
        ))
    }

    /// Hands a registrar the full set of records of a source.
    pub fn reconcile(
        &mut self,
        env: &Arc<dyn HostEnv>,
        source: &str,
        records: &[ServiceRecord],
    ) -> Result<CallOutput, CallError> {
        let input: Vec<registrar::ServiceRecord> = records
            .iter()
            .map(|record| registrar::ServiceRecord {
                namespace: record.namespace.clone(),
                name: record.name.clone(),
                endpoints: record
                    .endpoints
                    .iter()
                    .map(|endpoint| registrar::Endpoint {
                        address: endpoint.address.clone(),
                        port: endpoint.port,
                        ready: endpoint.ready,
                        node: endpoint.node.clone(),
                    })
                    .collect(),
                labels: record
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .collect();
        self.call(env, |instance| match &instance.kind {
            Bound::Registrar(bound) => Ok(bound
                .call_reconcile(&mut instance.store, source, &input)
                .map(|result| result.map(|()| None::<()>))),
            _ => Err(CallError::WrongWorld(instance.world_name())),
        })
        .map(|(_, output)| output)
    }

    /// The common part of every call: admission (suspension, backoff), an instance,
    /// deadline and fuel, the call, classification of what went wrong, counters.
    fn call<R>(
        &mut self,
        env: &Arc<dyn HostEnv>,
        invoke: impl FnOnce(
            &mut Instance,
        ) -> Result<wasmtime::Result<Result<Option<R>, String>>, CallError>,
    ) -> Result<(Option<R>, CallOutput), CallError> {
        if let Some(reason) = &self.suspended {
            if self
                .suspended_until
                .is_some_and(|until| until > Instant::now())
            {
                return Err(CallError::Suspended {
                    reason: reason.clone(),
                });
            }
            // The suspension ran out: one more chance; a failure suspends it again.
            self.suspended = None;
            self.suspended_until = None;
        }
        if let Some(at) = self.retry_at {
            let now = Instant::now();
            if at > now {
                return Err(CallError::Backoff { retry_in: at - now });
            }
        }
        let manifest = self.loaded.manifest.clone();
        let fresh_per_call = manifest.world != crate::manifest::World::Watcher;
        if fresh_per_call {
            self.instance = None;
        }
        if self.instance.is_none() {
            match Instance::new(&self.loaded) {
                Ok(instance) => self.instance = Some(instance),
                Err(message) => {
                    let err = CallError::Trap { message };
                    self.fail(&err);
                    return Err(err);
                }
            }
        }
        let Some(instance) = self.instance.as_mut() else {
            return Err(CallError::Host("no instance".into()));
        };
        let runtime = &self.loaded.runtime;
        let timeout = manifest
            .effective_timeout()
            .min(runtime.inner.config.max_timeout);
        instance.store.data_mut().begin(env.clone());
        instance.store.set_epoch_deadline(ticks(runtime, timeout));
        let fuel_before = if runtime.inner.config.fuel {
            let _ = instance.store.set_fuel(FUEL_PER_CALL);
            Some(FUEL_PER_CALL)
        } else {
            None
        };
        let started = Instant::now();
        let result = invoke(instance);
        let elapsed = started.elapsed();
        instance.calls += 1;
        let fuel_used = fuel_before
            .map(|before| before.saturating_sub(instance.store.get_fuel().unwrap_or(before)));
        instance.store.data_mut().finish();
        let state = instance.store.data_mut();
        let ops = std::mem::take(&mut state.ops);
        let logs = std::mem::take(&mut state.logs);
        let stderr = std::mem::take(&mut state.call_stderr);
        let recycle = instance.calls >= RECYCLE_AFTER_CALLS || state.output_nearly_full();
        self.record(elapsed);
        let outcome = match result {
            Err(err) => Err(err),
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(message))) => Err(CallError::Plugin(message)),
            Ok(Err(err)) => Err(classify(&err, timeout, &stderr)),
        };
        match outcome {
            Ok(value) => {
                self.consecutive_failures = 0;
                self.retry_at = None;
                if recycle {
                    self.instance = None;
                }
                Ok((
                    value,
                    CallOutput {
                        ops,
                        logs,
                        fuel_used,
                        elapsed,
                    },
                ))
            }
            Err(err) => {
                if let CallError::Plugin(message) = &err {
                    self.stats.errors += 1;
                    // Out-of-memory inside the guest's allocator surfaces as an error it
                    // returns; the instance stays usable but is replaced when it is full.
                    self.last_error = Some(format!("the plugin returned an error: {message}"));
                    if recycle {
                        self.instance = None;
                    }
                } else {
                    self.fail(&err);
                }
                Err(err)
            }
        }
    }

    fn record(&mut self, elapsed: Duration) {
        let s = &mut self.stats;
        s.calls += 1;
        let secs = elapsed.as_secs_f64();
        s.duration_sum += secs;
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        for count in &mut s.buckets[bucket..] {
            *count += 1;
        }
    }

    /// A failure: drop the instance, count it, back off or suspend.
    fn fail(&mut self, err: &CallError) {
        self.instance = None;
        match err {
            CallError::Timeout(_) => self.stats.timeouts += 1,
            CallError::OutOfMemory(_) => self.stats.oom += 1,
            _ => self.stats.traps += 1,
        }
        self.stats.errors += 1;
        if !err.is_failure() {
            return;
        }
        self.consecutive_failures += 1;
        self.last_error = Some(err.to_string());
        tracing::warn!(
            plugin = %self.loaded.manifest.name,
            failures = self.consecutive_failures,
            error = %err,
            "plugin call failed; instance dropped"
        );
        if self.consecutive_failures >= SUSPEND_AFTER {
            self.suspended = Some(format!(
                "{} failures in a row, the last: {err}",
                self.consecutive_failures
            ));
            self.suspended_until = Some(Instant::now() + SUSPEND_FOR);
            self.retry_at = None;
            return;
        }
        let backoff = FIRST_BACKOFF
            .saturating_mul(1 << (self.consecutive_failures - 1).min(16))
            .min(MAX_BACKOFF);
        self.retry_at = Some(Instant::now() + backoff);
    }
}

impl Instance {
    fn world_name(&self) -> &'static str {
        match self.kind {
            Bound::Watcher(_) => "watcher",
            Bound::Policy(_) => "scaling-policy",
            Bound::Registrar(_) => "registrar",
        }
    }
}

/// Names what stopped a call.
fn classify(err: &wasmtime::Error, timeout: Duration, stderr: &str) -> CallError {
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) | Some(Trap::OutOfFuel) => CallError::Timeout(timeout),
        Some(trap) => {
            let mut message = trap.to_string();
            let stderr = stderr.trim();
            if !stderr.is_empty() {
                message = format!("{message}; stderr: {stderr}");
            }
            if stderr.contains("memory allocation") && stderr.contains("failed") {
                return CallError::OutOfMemory(message);
            }
            CallError::Trap { message }
        }
        None => {
            let cause = describe(err);
            if cause.contains("memory") && (cause.contains("grow") || cause.contains("limit")) {
                CallError::OutOfMemory(cause)
            } else {
                CallError::Trap { message: cause }
            }
        }
    }
}

/// Appends the Prometheus text of every plugin's counters.
pub fn render_prometheus(stats: &[PluginStats], out: &mut String) {
    use std::fmt::Write;
    if stats.is_empty() {
        return;
    }
    type Counter = (&'static str, &'static str, fn(&PluginStats) -> u64);
    let counters: [Counter; 5] = [
        ("plugin_calls_total", "Calls into the plugin.", |s| s.calls),
        (
            "plugin_errors_total",
            "Calls that failed or returned an error.",
            |s| s.errors,
        ),
        ("plugin_traps_total", "Calls that trapped.", |s| s.traps),
        (
            "plugin_timeouts_total",
            "Calls stopped at their deadline.",
            |s| s.timeouts,
        ),
        ("plugin_oom_total", "Calls that ran out of memory.", |s| {
            s.oom
        }),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for s in stats {
            let _ = writeln!(out, "{name}{{plugin=\"{}\"}} {}", s.name, value(s));
        }
    }
    let name = "plugin_call_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Wall time of plugin calls.\n# TYPE {name} histogram"
    );
    for s in stats {
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{plugin=\"{}\",le=\"{bound}\"}} {}",
                s.name, s.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{plugin=\"{}\",le=\"+Inf\"}} {}",
            s.name,
            s.buckets[BUCKETS.len()]
        );
        let _ = writeln!(
            out,
            "{name}_sum{{plugin=\"{}\"}} {}",
            s.name, s.duration_sum
        );
        let _ = writeln!(out, "{name}_count{{plugin=\"{}\"}} {}", s.name, s.calls);
    }
}
