//! Calls into a loaded plugin: one store per instance, deadlines, memory caps, the
//! failure policy (drop, back off, re-instantiate, suspend) and the per-plugin counters.

use crate::bindings::{policy, registrar, watcher};
use crate::convert;
use crate::host::{with_node, HostEnv, State};
use crate::manifest::World;
use crate::runtime::{Loaded, Pre};
use crate::types::{ChangeBatch, Decision, Level, ServiceRecord, TxnOp, Workload};
use serde::Serialize;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use wasmtime::{Store, Trap};

/// Consecutive failures (traps, timeouts, out of memory) after which a plugin is
/// suspended.
pub const SUSPEND_AFTER: u32 = 5;
/// How long a suspension lasts before the plugin gets one more chance (a failure then
/// suspends it again at once). A new version or [`Plugin::resume`] lifts it at once.
pub const SUSPEND_FOR: Duration = Duration::from_secs(300);
/// First backoff after a failure; doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest backoff between failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A warm watcher instance is replaced after this many calls.
pub const RECYCLE_AFTER_CALLS: u64 = 10_000;
/// Fuel given to each call when the runtime meters fuel (a meter, not a limit: the
/// deadline stops a runaway plugin long before it runs out).
const FUEL_PER_CALL: u64 = 10_000_000_000;
/// Upper bounds (seconds) of the call-duration histogram buckets.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];
/// Calls whose durations the status's p99 is computed over.
const RECENT_CALLS: usize = 1024;

/// What a successful call produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutput {
    /// The buffered writes, to submit as one multi (only ever from a call that returned
    /// ok).
    pub ops: Vec<TxnOp>,
    /// What the plugin logged (and printed to stdout and stderr), bounded.
    pub logs: Vec<(Level, String)>,
    /// Fuel used, when the runtime meters it.
    pub fuel_used: Option<u64>,
    /// Wall time of the call (instantiation included for a fresh instance).
    pub elapsed: Duration,
}

/// Why a call produced nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The guest trapped (a Rust panic is an `unreachable` trap; its message follows).
    #[error("trap: {message}")]
    Trap {
        /// The trap and what the guest printed to stderr.
        message: String,
    },
    /// The call ran past its deadline (or, with fuel metering, out of fuel).
    #[error("timed out: the call ran past its deadline")]
    Timeout,
    /// The guest could not get the memory it needed and trapped.
    #[error("out of memory: the plugin reached its memory cap")]
    OutOfMemory,
    /// The export returned an error; its writes were discarded.
    #[error("the plugin returned an error: {0}")]
    Plugin(String),
    /// Too many failures in a row: not called until a new version is loaded, `resume()`,
    /// or the suspension runs out.
    #[error("suspended: {reason}")]
    Suspended {
        /// The failures that suspended it.
        reason: String,
    },
    /// Failed recently: not called until the backoff passes.
    #[error("backing off for {retry_in:?} after a failure")]
    Backoff {
        /// Time left.
        retry_in: Duration,
    },
    /// The call does not belong to the plugin's world (a caller's mistake).
    #[error("the plugin's world has no such export")]
    WrongWorld,
    /// The host could not make the call.
    #[error("host error: {0}")]
    Host(String),
}

/// The counters of one plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PluginStats {
    /// The plugin's name.
    pub name: String,
    /// Calls that ran (refusals during backoff or suspension are not counted).
    pub calls: u64,
    /// Calls that failed or returned an error.
    pub errors: u64,
    /// Calls that trapped (or failed to instantiate).
    pub traps: u64,
    /// Calls stopped at their deadline.
    pub timeouts: u64,
    /// Calls that ran out of memory.
    pub oom: u64,
    /// Cumulative counts per bucket of [`DURATION_BUCKETS`], then `+Inf`.
    #[serde(skip)]
    pub buckets: [u64; 13],
    /// Sum of call durations, seconds.
    pub duration_sum: f64,
}

/// What a plugin is doing, for its status node.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PluginStatus {
    /// The plugin's name.
    pub name: String,
    /// The manifest's version.
    pub version: String,
    /// The component's sha256.
    pub sha256: String,
    /// Its world.
    pub world: World,
    /// `running`, `backoff` or `suspended`.
    pub state: &'static str,
    /// The last failure or error, with detail.
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// See [`PluginStats`].
    pub calls: u64,
    /// See [`PluginStats`].
    pub errors: u64,
    /// See [`PluginStats`].
    pub traps: u64,
    /// See [`PluginStats`].
    pub timeouts: u64,
    /// See [`PluginStats`].
    pub oom: u64,
    /// The 99th percentile of the last 1024 calls' durations, ms.
    pub p99_call_ms: f64,
    /// The mean call duration, ms.
    pub mean_call_ms: f64,
}

/// One instance: its store and its bindings.
pub(crate) struct Instance {
    store: Store<State>,
    bound: Bound,
    calls: u64,
}

enum Bound {
    Watcher(watcher::Watcher),
    Policy(policy::ScalingPolicy),
    Registrar(registrar::Registrar),
}

impl Instance {
    /// A fresh store and instance, reading `env` while it instantiates.
    pub(crate) fn new(loaded: &Loaded, env: &dyn HostEnv) -> Result<Instance, String> {
        Instance::try_new(loaded, env).map_err(|err| match err {
            InstantiateError::Setup(message) => message,
            InstantiateError::Wasm(err) => format!("cannot instantiate: {}", describe(&err)),
        })
    }

    fn try_new(loaded: &Loaded, env: &dyn HostEnv) -> Result<Instance, InstantiateError> {
        let state = State::new(loaded.manifest_arc().clone())
            .map_err(|err| InstantiateError::Setup(err.to_string()))?;
        let runtime = loaded.runtime();
        let mut store = Store::new(&runtime.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        if runtime.inner.config.fuel {
            store
                .set_fuel(FUEL_PER_CALL)
                .map_err(InstantiateError::Wasm)?;
        }
        // Instantiation may run guest code (start functions): bound it like a call.
        store.set_epoch_deadline(ticks(loaded));
        let bound = with_node(env, || match loaded.pre() {
            Pre::Watcher(pre) => pre.instantiate(&mut store).map(Bound::Watcher),
            Pre::Policy(pre) => pre.instantiate(&mut store).map(Bound::Policy),
            Pre::Registrar(pre) => pre.instantiate(&mut store).map(Bound::Registrar),
        })
        .map_err(InstantiateError::Wasm)?;
        Ok(Instance {
            store,
            bound,
            calls: 0,
        })
    }
}

enum InstantiateError {
    Setup(String),
    Wasm(wasmtime::Error),
}

/// The per-call deadline, in epoch ticks: ceil(timeout / tick) + 1, so that a call gets
/// at least its timeout however far the current tick has run.
fn ticks(loaded: &Loaded) -> u64 {
    let config = &loaded.runtime().inner.config;
    let timeout = loaded
        .manifest()
        .effective_timeout()
        .min(config.max_timeout);
    let tick = config.epoch_tick.max(Duration::from_millis(1)).as_nanos();
    let ticks = timeout.as_nanos().div_ceil(tick) + 1;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// The cause of a wasmtime error (its `Display` shows only the backtrace's heading).
fn describe(err: &wasmtime::Error) -> String {
    format!("{}", err.root_cause())
}

/// A loaded plugin with its failure policy and counters. Calls are synchronous and run on
/// the caller's thread: call from a blocking thread, never from an async task.
pub struct Plugin {
    loaded: Loaded,
    instance: Option<Instance>,
    consecutive_failures: u32,
    retry_at: Option<Instant>,
    suspended: Option<String>,
    suspended_until: Option<Instant>,
    last_error: Option<String>,
    last_logs: Vec<(Level, String)>,
    stats: PluginStats,
    recent: VecDeque<Duration>,
}

/// What one call into the guest returned, before classification.
type Raw<R> = wasmtime::Result<Result<R, String>>;

/// One call, run: what the guest returned (`None`: the instance is of another world) and
/// what it left behind.
struct Ran<R> {
    result: Option<Raw<R>>,
    output: CallOutput,
    stderr: String,
    refused_memory: bool,
    /// Replace the instance rather than keep it warm (many calls, memory past 3/4 of
    /// the cap, lots of captured output).
    worn: bool,
}

impl Plugin {
    /// Wraps a loaded component; the first call instantiates it.
    pub fn new(loaded: Loaded) -> Plugin {
        let stats = PluginStats {
            name: loaded.manifest().name.clone(),
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
            last_logs: Vec::new(),
            stats,
            recent: VecDeque::with_capacity(RECENT_CALLS),
        }
    }

    /// What it was loaded from.
    pub fn loaded(&self) -> &Loaded {
        &self.loaded
    }

    /// Lifts a suspension and any backoff (an operator's decision).
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

    /// What the last call logged, also when it failed (a failed call returns no
    /// [`CallOutput`]).
    pub fn last_logs(&self) -> &[(Level, String)] {
        &self.last_logs
    }

    /// Appends this plugin's counters and call-duration histogram in the Prometheus text
    /// format. For several plugins, use [`render_prometheus`] once with all their stats,
    /// so that each metric family is written once.
    pub fn render_prometheus(&self, out: &mut String) {
        render_prometheus(std::slice::from_ref(&self.stats), out);
    }

    /// The status to report.
    pub fn status(&self) -> PluginStatus {
        let now = Instant::now();
        let state = if self.suspended.is_some() && self.suspended_until.is_some_and(|t| t > now) {
            "suspended"
        } else if self.retry_at.is_some_and(|at| at > now) {
            "backoff"
        } else {
            "running"
        };
        let s = &self.stats;
        let mut recent: Vec<Duration> = self.recent.iter().copied().collect();
        recent.sort_unstable();
        let p99 = recent
            .get((recent.len() * 99).div_ceil(100).saturating_sub(1))
            .copied()
            .unwrap_or_default();
        PluginStatus {
            name: self.loaded.manifest().name.clone(),
            version: self.loaded.manifest().version.clone(),
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
            p99_call_ms: p99.as_secs_f64() * 1000.0,
            mean_call_ms: if s.calls == 0 {
                0.0
            } else {
                s.duration_sum * 1000.0 / s.calls as f64
            },
        }
    }

    /// Hands a watcher a batch of changes (on its warm instance).
    pub fn on_changes(
        &mut self,
        env: &dyn HostEnv,
        batch: &ChangeBatch,
    ) -> Result<CallOutput, CallError> {
        if self.loaded.world() != World::Watcher {
            return Err(CallError::WrongWorld);
        }
        let input = convert::batch(batch);
        self.call(env, |instance| match &instance.bound {
            Bound::Watcher(bound) => Some(bound.call_on_changes(&mut instance.store, &input)),
            _ => None,
        })
        .map(|((), output)| output)
    }

    /// Asks a scaling policy for a decision (on a fresh instance).
    pub fn decide(
        &mut self,
        env: &dyn HostEnv,
        workload: &Workload,
    ) -> Result<(Decision, CallOutput), CallError> {
        if self.loaded.world() != World::ScalingPolicy {
            return Err(CallError::WrongWorld);
        }
        let input = convert::workload(workload);
        self.call(env, |instance| match &instance.bound {
            Bound::Policy(bound) => Some(
                bound
                    .call_decide(&mut instance.store, &input)
                    .map(|result| result.map(convert::decision)),
            ),
            _ => None,
        })
    }

    /// Hands a registrar the full set of records of a source (on a fresh instance).
    pub fn reconcile(
        &mut self,
        env: &dyn HostEnv,
        source: &str,
        records: &[ServiceRecord],
    ) -> Result<CallOutput, CallError> {
        if self.loaded.world() != World::Registrar {
            return Err(CallError::WrongWorld);
        }
        let input = convert::records(records);
        self.call(env, |instance| match &instance.bound {
            Bound::Registrar(bound) => {
                Some(bound.call_reconcile(&mut instance.store, source, &input))
            }
            _ => None,
        })
        .map(|((), output)| output)
    }

    /// Refuses a call while the plugin is suspended or backing off.
    fn admit(&mut self) -> Result<(), CallError> {
        let now = Instant::now();
        if let Some(reason) = &self.suspended {
            if self.suspended_until.is_some_and(|until| until > now) {
                return Err(CallError::Suspended {
                    reason: reason.clone(),
                });
            }
            // The suspension ran out: one more chance; a failure suspends it again.
            self.suspended = None;
            self.suspended_until = None;
            self.retry_at = None;
        }
        if let Some(at) = self.retry_at {
            if at > now {
                return Err(CallError::Backoff { retry_in: at - now });
            }
        }
        Ok(())
    }

    /// The common part of every call: admission, an instance, the call under its
    /// deadline, classification of what went wrong, counters.
    fn call<R>(
        &mut self,
        env: &dyn HostEnv,
        invoke: impl FnOnce(&mut Instance) -> Option<Raw<R>>,
    ) -> Result<(R, CallOutput), CallError> {
        self.admit()?;
        let started = Instant::now();
        let mut instance = self.instance_for_call(env, started)?;
        let ran = self.run(&mut instance, env, started, invoke);
        self.record(ran.output.elapsed);
        self.last_logs.clone_from(&ran.output.logs);
        let Some(result) = ran.result else {
            return Err(CallError::WrongWorld);
        };
        match result {
            Ok(Ok(value)) => {
                self.consecutive_failures = 0;
                self.retry_at = None;
                if !ran.worn {
                    self.instance = Some(instance);
                }
                Ok((value, ran.output))
            }
            Ok(Err(message)) => {
                // The guest said no: its writes are dropped, the instance stays usable.
                self.stats.errors += 1;
                self.last_error = Some(format!("the plugin returned an error: {message}"));
                if !ran.worn {
                    self.instance = Some(instance);
                }
                Err(CallError::Plugin(message))
            }
            Err(err) => {
                // A trapped instance cannot be entered again: it is dropped here.
                let (err, detail) = classify(&err, ran.refused_memory, &ran.stderr);
                self.fail(&err, detail);
                Err(err)
            }
        }
    }

    /// The warm instance (watchers) or a fresh one (policies and registrars: no state
    /// leaks between workloads or sources). A failure to instantiate counts as a failed
    /// call.
    fn instance_for_call(
        &mut self,
        env: &dyn HostEnv,
        started: Instant,
    ) -> Result<Instance, CallError> {
        if self.loaded.world() != World::Watcher {
            self.instance = None;
        }
        if let Some(instance) = self.instance.take() {
            return Ok(instance);
        }
        Instance::try_new(&self.loaded, env).map_err(|err| {
            self.last_logs.clear();
            self.record(started.elapsed());
            let (err, detail) = match err {
                InstantiateError::Setup(message) => (CallError::Host(message.clone()), message),
                InstantiateError::Wasm(err) => {
                    let (err, detail) = classify(&err, false, "");
                    (err, format!("cannot instantiate: {detail}"))
                }
            };
            self.fail(&err, detail);
            err
        })
    }

    /// Runs one call on `instance`: a clean buffer, the deadline, fuel when metered, the
    /// node lent to the host functions; then collects what the call left behind.
    fn run<R>(
        &self,
        instance: &mut Instance,
        env: &dyn HostEnv,
        started: Instant,
        invoke: impl FnOnce(&mut Instance) -> Option<Raw<R>>,
    ) -> Ran<R> {
        instance.store.data_mut().begin();
        instance.store.set_epoch_deadline(ticks(&self.loaded));
        let metered = self.loaded.runtime().inner.config.fuel;
        if metered {
            let _ = instance.store.set_fuel(FUEL_PER_CALL);
        }
        let result = with_node(env, || invoke(instance));
        let elapsed = started.elapsed();
        instance.calls += 1;
        let fuel_used = if metered {
            let left = instance.store.get_fuel().unwrap_or(FUEL_PER_CALL);
            Some(FUEL_PER_CALL.saturating_sub(left))
        } else {
            None
        };
        let state = instance.store.data_mut();
        state.finish();
        let worn = instance.calls >= RECYCLE_AFTER_CALLS
            || state.limiter.peak_memory > self.loaded.manifest().effective_memory_bytes() / 4 * 3
            || state.output_large();
        Ran {
            result,
            output: CallOutput {
                ops: std::mem::take(&mut state.ops),
                logs: std::mem::take(&mut state.logs),
                fuel_used,
                elapsed,
            },
            stderr: std::mem::take(&mut state.call_stderr),
            refused_memory: state.limiter.refused,
            worn,
        }
    }

    fn record(&mut self, elapsed: Duration) {
        let s = &mut self.stats;
        s.calls += 1;
        let secs = elapsed.as_secs_f64();
        s.duration_sum += secs;
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(DURATION_BUCKETS.len());
        for count in &mut s.buckets[bucket..] {
            *count += 1;
        }
        if self.recent.len() == RECENT_CALLS {
            self.recent.pop_front();
        }
        self.recent.push_back(elapsed);
    }

    /// A failure: the instance is gone; count it, back off or suspend.
    fn fail(&mut self, err: &CallError, detail: String) {
        self.instance = None;
        match err {
            CallError::Timeout => self.stats.timeouts += 1,
            CallError::OutOfMemory => self.stats.oom += 1,
            _ => self.stats.traps += 1,
        }
        self.stats.errors += 1;
        self.consecutive_failures += 1;
        tracing::warn!(
            plugin = %self.loaded.manifest().name,
            failures = self.consecutive_failures,
            error = %detail,
            "plugin call failed; instance dropped"
        );
        if self.consecutive_failures >= SUSPEND_AFTER {
            let reason = format!(
                "{} failures in a row, the last: {detail}",
                self.consecutive_failures
            );
            tracing::warn!(
                plugin = %self.loaded.manifest().name,
                %reason,
                "plugin suspended for {} s",
                SUSPEND_FOR.as_secs()
            );
            self.suspended = Some(reason);
            self.suspended_until = Some(Instant::now() + SUSPEND_FOR);
            self.retry_at = None;
        } else {
            let doublings = (self.consecutive_failures - 1).min(16);
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << doublings)
                .min(MAX_BACKOFF);
            self.retry_at = Some(Instant::now() + backoff);
        }
        self.last_error = Some(detail);
    }
}

/// Names what stopped a call: the error to return and a detailed line for the status.
fn classify(err: &wasmtime::Error, refused_memory: bool, stderr: &str) -> (CallError, String) {
    let stderr = stderr.trim();
    let with_stderr = |text: String| {
        if stderr.is_empty() {
            text
        } else {
            format!("{text}; stderr: {stderr}")
        }
    };
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => (CallError::Timeout, "timed out at its deadline".into()),
        Some(Trap::OutOfFuel) => (CallError::Timeout, "timed out: ran out of fuel".into()),
        _ if refused_memory => (
            CallError::OutOfMemory,
            with_stderr(format!(
                "out of memory (a memory growth past the cap was refused): {}",
                describe(err)
            )),
        ),
        _ => {
            let message = with_stderr(describe(err));
            (
                CallError::Trap {
                    message: message.clone(),
                },
                format!("trap: {message}"),
            )
        }
    }
}

/// Appends the Prometheus text of the plugins' counters and call-duration histograms,
/// each metric family once: `edgekeeper_plugin_{calls,errors,traps,timeouts,oom}_total`
/// and `edgekeeper_plugin_call_duration_seconds`, labelled `plugin="<name>"`.
pub fn render_prometheus(stats: &[PluginStats], out: &mut String) {
    use std::fmt::Write;
    if stats.is_empty() {
        return;
    }
    type Counter = (&'static str, &'static str, fn(&PluginStats) -> u64);
    let counters: [Counter; 5] = [
        ("calls", "Calls into the plugin.", |s| s.calls),
        ("errors", "Calls that failed or returned an error.", |s| {
            s.errors
        }),
        ("traps", "Calls that trapped.", |s| s.traps),
        ("timeouts", "Calls stopped at their deadline.", |s| {
            s.timeouts
        }),
        ("oom", "Calls that ran out of memory.", |s| s.oom),
    ];
    for (what, help, value) in counters {
        let name = format!("edgekeeper_plugin_{what}_total");
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for s in stats {
            let _ = writeln!(out, "{name}{{plugin=\"{}\"}} {}", s.name, value(s));
        }
    }
    let name = "edgekeeper_plugin_call_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Wall time of plugin calls.\n# TYPE {name} histogram"
    );
    for s in stats {
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
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
            s.buckets[DURATION_BUCKETS.len()]
        );
        let _ = writeln!(
            out,
            "{name}_sum{{plugin=\"{}\"}} {}",
            s.name, s.duration_sum
        );
        let _ = writeln!(out, "{name}_count{{plugin=\"{}\"}} {}", s.name, s.calls);
    }
}
