//! `bench load`: setup, warm-up, the measured phase over many sessions, cleanup, report.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use ek_jute::{OwnedResponse, Request};
use ek_types::{ErrorCode, Zxid};
use serde::Serialize;
use tokio::time::Instant;

use crate::conn::{four_letter_word, srvr_field, Conn};
use crate::mix::{OpKind, OpMix};
use crate::session::{run_session, Plan, SessionResult};
use crate::stats::{duration_secs, new_histogram, round1, LatencySummary, Recorder};
use crate::tree::{self, check_run_id, create_dirs, create_op, default_run_id, run_writes};
use crate::{parse_secs, BenchError};

/// The measured phase when neither `--ops` nor `--duration-s` is given, seconds.
const DEFAULT_DURATION_S: f64 = 10.0;
/// How long a TCP connect plus handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `bench load`: closed-loop (or pipelined) load with an op mix, measured per op.
#[derive(Clone, Debug, clap::Args)]
pub struct LoadArgs {
    /// Servers to spread the sessions over, round-robin.
    #[arg(
        long,
        value_name = "HOST:PORT,...",
        value_delimiter = ',',
        default_value = "127.0.0.1:2181"
    )]
    pub servers: Vec<String>,
    /// Sessions, each on its own TCP connection.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub sessions: u32,
    /// Requests in flight per session; 1 is a closed loop.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub in_flight: u32,
    /// Op mix as OP=WEIGHT,...; ops: create (new unique nodes), setData, getData, exists,
    /// multi (--multi-size setData ops).
    #[arg(long, value_name = "MIX", default_value = "getData=90,setData=10")]
    pub mix: OpMix,
    /// Bytes of data in each key, create and setData.
    #[arg(long, value_name = "BYTES", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(0..=16 << 20))]
    pub value_size: u32,
    /// Keys created before measuring; reads and setData pick one uniformly at random.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub keys: u32,
    /// setData ops in each multi.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub multi_size: u32,
    /// Warm-up before measuring, seconds: the sessions run the mix, nothing is recorded.
    #[arg(long = "warmup-s", visible_alias = "warmup", value_name = "SECS",
          default_value_t = 2.0, value_parser = parse_secs)]
    pub warmup_s: f64,
    /// Length of the measured phase, seconds (default 10 unless --ops is given).
    #[arg(long = "duration-s", visible_alias = "duration", value_name = "SECS",
          value_parser = parse_secs)]
    pub duration_s: Option<f64>,
    /// Measured ops in all (across sessions); with --duration-s too, whichever ends first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub ops: Option<u64>,
    /// Session timeout asked for, ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64))]
    pub session_timeout_ms: u64,
    /// A request unanswered for this long fails the run, ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
    /// Seed of the op and key draws (each session mixes in its index).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Names the run's tree, /ekbench/RUN_ID (default: UNIX_SECONDS-PID).
    #[arg(long, value_name = "RUN_ID")]
    pub run_id: Option<String>,
    /// Keep /ekbench/RUN_ID after the run instead of deleting it.
    #[arg(long)]
    pub keep: bool,
}

/// The result of `bench load`, printed as one human line per op plus one JSON line.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// Always `load`.
    pub mode: &'static str,
    /// The run id; the tree was `/ekbench/<run_id>`.
    pub run_id: String,
    /// The servers, as given.
    pub servers: Vec<String>,
    /// The first server's `Zookeeper version:` line from `srvr`, if it answered.
    pub server_version: Option<String>,
    /// Sessions.
    pub sessions: u32,
    /// Requests in flight per session.
    pub in_flight: u32,
    /// The op mix, normalised.
    pub mix: String,
    /// Value size, bytes.
    pub value_size: u32,
    /// Keys.
    pub keys: u32,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Measured time: from the end of warm-up to the last measured reply, seconds.
    pub duration_s: f64,
    /// Measured ops answered (successes and errors).
    pub ops: u64,
    /// Measured ops answered with an error.
    pub errors: u64,
    /// Answered ops per second.
    pub throughput_ops_s: f64,
    /// Latency of the successful ops of every kind together.
    #[serde(flatten)]
    pub latency: LatencySummary,
    /// The same per op kind, by API name (`getData`, ...); kinds not in the mix are absent.
    pub per_op: BTreeMap<String, OpReport>,
}

/// The measured figures of one op kind.
#[derive(Clone, Debug, Serialize)]
pub struct OpReport {
    /// Ops answered (successes and errors).
    pub ops: u64,
    /// Ops answered with an error.
    pub errors: u64,
    /// Answered ops per second.
    pub throughput_ops_s: f64,
    /// Latency of the successful ops.
    #[serde(flatten)]
    pub latency: LatencySummary,
}

impl LoadReport {
    /// One line per op kind, then a total line with the run's shape.
    pub fn human_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = OpKind::ALL
            .iter()
            .filter_map(|kind| Some((kind.name(), self.per_op.get(kind.name())?)))
            .map(|(name, op)| {
                format!(
                    "{name:<8} ops={} errors={} {:.1} ops/s {}",
                    op.ops,
                    op.errors,
                    op.throughput_ops_s,
                    op.latency.human()
                )
            })
            .collect();
        lines.push(format!(
            "{:<8} ops={} errors={} {:.1} ops/s {} | sessions={} in-flight={} value={}B \
             keys={} mix={} duration={:.2}s servers={}",
            "total",
            self.ops,
            self.errors,
            self.throughput_ops_s,
            self.latency.human(),
            self.sessions,
            self.in_flight,
            self.value_size,
            self.keys,
            self.mix,
            self.duration_s,
            self.servers.join(",")
        ));
        lines
    }
}

/// Everything `run_load` derives from the arguments before touching the network.
struct Layout {
    run_id: String,
    root: String,
    create_parent: String,
    keys: Vec<String>,
    duration: Option<Duration>,
}

fn layout(args: &LoadArgs) -> Result<Layout, BenchError> {
    if args.servers.iter().all(|server| server.trim().is_empty()) {
        return Err(BenchError::InvalidArgs("--servers is empty".to_owned()));
    }
    let run_id = args.run_id.clone().unwrap_or_else(default_run_id);
    check_run_id(&run_id)?;
    let root = format!("{}/{run_id}", tree::BENCH_ROOT);
    let duration_s = match (args.duration_s, args.ops) {
        (None, None) => Some(DEFAULT_DURATION_S),
        (duration_s, _) => duration_s,
    };
    Ok(Layout {
        create_parent: format!("{root}/new"),
        keys: (0..args.keys).map(|i| format!("{root}/k{i}")).collect(),
        duration: duration_s.map(Duration::from_secs_f64),
        run_id,
        root,
    })
}

/// Runs `bench load` and returns its report (the caller prints it).
pub async fn run_load(args: &LoadArgs) -> Result<LoadReport, BenchError> {
    let layout = layout(args)?;
    let servers: Vec<String> = args.servers.iter().map(|s| s.trim().to_owned()).collect();
    let server_version = four_letter_word(&servers[0], "srvr", Duration::from_secs(2))
        .await
        .ok()
        .and_then(|answer| srvr_field(&answer, "Zookeeper version:").map(str::to_owned));
    let session_timeout = Duration::from_millis(args.session_timeout_ms);
    let wait = Duration::from_millis(args.request_timeout_ms);
    let value = vec![b'v'; args.value_size as usize];

    let mut setup = Conn::connect(
        &servers[0],
        None,
        Zxid::ZERO,
        session_timeout,
        CONNECT_TIMEOUT,
    )
    .await?;
    create_dirs(
        &mut setup,
        &layout.root,
        std::slice::from_ref(&layout.create_parent),
        wait,
    )
    .await?;
    let key_ops = layout
        .keys
        .iter()
        .map(|key| create_op(key.clone(), value.clone()));
    run_writes(&mut setup, key_ops, &[ErrorCode::NodeExists], wait).await?;
    setup.close(wait).await;
    eprintln!(
        "ek-bench: {} keys of {} bytes under {}; {} sessions over {} server(s)",
        args.keys,
        args.value_size,
        layout.root,
        args.sessions,
        servers.len()
    );

    let measured = measure(args, &layout, &servers, value).await;
    if !args.keep {
        let cleaned = cleanup(&servers[0], &layout, session_timeout, wait).await;
        match (&measured, cleaned) {
            (Ok(_), Err(error)) => return Err(error),
            // The measurement's own error is the one to report.
            (Err(_), Err(error)) => eprintln!("ek-bench: cleanup failed too: {error}"),
            (_, Ok(())) => {}
        }
    }
    let (results, elapsed) = measured?;
    Ok(report(
        args,
        &layout,
        servers,
        server_version,
        &results,
        elapsed,
    ))
}

/// Connects every session (round-robin over `servers`), runs warm-up and the measured
/// phase, and returns each session's result plus the measured time.
async fn measure(
    args: &LoadArgs,
    layout: &Layout,
    servers: &[String],
    value: Vec<u8>,
) -> Result<(Vec<SessionResult>, Duration), BenchError> {
    let conns = connect_sessions(args, servers, &layout.root).await?;
    let warmup = Duration::from_secs_f64(args.warmup_s);
    let measure_start = Instant::now() + warmup;
    let plan = Arc::new(Plan {
        mix: args.mix.clone(),
        keys: layout.keys.clone(),
        value,
        create_parent: layout.create_parent.clone(),
        multi_size: args.multi_size as usize,
        in_flight: args.in_flight as usize,
        measure_start,
        deadline: layout.duration.map(|duration| measure_start + duration),
        budget: args.ops.map(AtomicU64::new),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        seed: args.seed,
    });
    eprintln!(
        "ek-bench: warm-up {:.1}s, then measuring ({})",
        args.warmup_s,
        bounds_text(layout.duration, args.ops)
    );
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(index, conn)| tokio::spawn(run_session(Arc::clone(&plan), index, conn)))
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        let result = task
            .await
            .map_err(|error| BenchError::Task(error.to_string()))?;
        results.push(result?);
    }
    let last_reply = results.iter().filter_map(|r| r.last_measured_reply).max();
    let elapsed = last_reply.map_or(Duration::ZERO, |last| {
        last.saturating_duration_since(measure_start)
    });
    Ok((results, elapsed))
}

fn bounds_text(duration: Option<Duration>, ops: Option<u64>) -> String {
    match (duration, ops) {
        (Some(duration), Some(ops)) => {
            format!("{ops} ops or {:.1}s", duration.as_secs_f64())
        }
        (Some(duration), None) => format!("{:.1}s", duration.as_secs_f64()),
        (None, Some(ops)) => format!("{ops} ops"),
        (None, None) => "unbounded".to_owned(),
    }
}

/// Opens the sessions concurrently; each syncs the run's root so that a follower has
/// caught up with the setup before its session reads keys.
async fn connect_sessions(
    args: &LoadArgs,
    servers: &[String],
    root: &str,
) -> Result<Vec<Conn>, BenchError> {
    let session_timeout = Duration::from_millis(args.session_timeout_ms);
    let wait = Duration::from_millis(args.request_timeout_ms);
    let tasks: Vec<_> = (0..args.sessions as usize)
        .map(|index| {
            let addr = servers[index % servers.len()].clone();
            let root = root.to_owned();
            tokio::spawn(async move {
                let mut conn =
                    Conn::connect(&addr, None, Zxid::ZERO, session_timeout, CONNECT_TIMEOUT)
                        .await?;
                conn.call(&Request::Sync { path: root }, wait).await?;
                Ok::<Conn, BenchError>(conn)
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(tasks.len());
    for task in tasks {
        let conn = task
            .await
            .map_err(|error| BenchError::Task(error.to_string()))?;
        conns.push(conn?);
    }
    Ok(conns)
}

/// Deletes the run's tree: the created nodes (listed with getChildren), the keys, the
/// create parent, the root and, when empty, `/ekbench`.
async fn cleanup(
    addr: &str,
    layout: &Layout,
    session_timeout: Duration,
    wait: Duration,
) -> Result<(), BenchError> {
    let mut conn = Conn::connect(addr, None, Zxid::ZERO, session_timeout, CONNECT_TIMEOUT).await?;
    let list = Request::GetChildren {
        path: layout.create_parent.clone(),
        watch: false,
    };
    let created = match conn.call(&list, wait).await? {
        (_, Some(OwnedResponse::GetChildren { children })) => children,
        _ => Vec::new(),
    };
    let created_count = created.len();
    let paths = created
        .into_iter()
        .map(|name| format!("{}/{name}", layout.create_parent))
        .chain(layout.keys.iter().cloned())
        .chain([layout.create_parent.clone(), layout.root.clone()]);
    tree::delete_all(&mut conn, paths, wait).await?;
    conn.close(wait).await;
    eprintln!(
        "ek-bench: deleted {} ({} keys, {created_count} created nodes)",
        layout.root,
        layout.keys.len()
    );
    Ok(())
}

fn report(
    args: &LoadArgs,
    layout: &Layout,
    servers: Vec<String>,
    server_version: Option<String>,
    results: &[SessionResult],
    elapsed: Duration,
) -> LoadReport {
    let mut recorder = Recorder::default();
    for result in results {
        recorder.merge(&result.recorder);
    }
    let secs = elapsed.as_secs_f64();
    let rate = |ops: u64| {
        if secs > 0.0 {
            round1(ops as f64 / secs)
        } else {
            0.0
        }
    };
    let mut all = new_histogram();
    let mut per_op = BTreeMap::new();
    let (mut ops, mut errors) = (0, 0);
    for kind in OpKind::ALL
        .into_iter()
        .filter(|kind| args.mix.contains(*kind))
    {
        let stats = recorder.get(kind);
        let _ = all.add(&stats.latency_us);
        let answered = stats.latency_us.len() + stats.errors;
        ops += answered;
        errors += stats.errors;
        per_op.insert(
            kind.name().to_owned(),
            OpReport {
                ops: answered,
                errors: stats.errors,
                throughput_ops_s: rate(answered),
                latency: LatencySummary::of(&stats.latency_us),
            },
        );
    }
    LoadReport {
        mode: "load",
        run_id: layout.run_id.clone(),
        servers,
        server_version,
        sessions: args.sessions,
        in_flight: args.in_flight,
        mix: args.mix.to_string(),
        value_size: args.value_size,
        keys: args.keys,
        warmup_s: args.warmup_s,
        duration_s: duration_secs(elapsed),
        ops,
        errors,
        throughput_ops_s: rate(ops),
        latency: LatencySummary::of(&all),
        per_op,
    }
}
