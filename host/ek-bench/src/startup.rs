//! `bench startup`: launch a server, time how long until it serves a read, stop it;
//! `--repeat` times.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ek_jute::Request;
use ek_types::Zxid;
use serde::Serialize;
use tokio::time::{sleep, Instant};

use crate::conn::Conn;
use crate::process::{send_signal, Signal, Target};
use crate::stats::{duration_ms, human_ms};
use crate::{parse_secs, BenchError};

/// How long one probe (connect, handshake, getData) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// `bench startup`: time from launching a server to its first served read.
#[derive(Clone, Debug, clap::Args)]
pub struct StartupArgs {
    /// The command line that starts the server in the foreground, run as `sh -c "exec
    /// COMMAND"` in its own process group, e.g. "edgekeeper serve --config ek.toml".
    #[arg(long, value_name = "COMMAND")]
    pub cmd: String,
    /// The client address the launched server listens on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:2181")]
    pub server: String,
    /// The znode read by the probe (getData).
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub path: String,
    /// Launches; the report gives the median, min and max.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// Time between probes, ms.
    #[arg(long, value_name = "MS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub poll_ms: u64,
    /// Give up on a launch that serves no read within this many seconds.
    #[arg(long = "timeout-s", value_name = "SECS", default_value_t = 120.0,
          value_parser = parse_secs)]
    pub timeout_s: f64,
    /// After SIGTERM, wait this many seconds for the server to exit before SIGKILL.
    #[arg(long = "stop-timeout-s", value_name = "SECS", default_value_t = 10.0,
          value_parser = parse_secs)]
    pub stop_timeout_s: f64,
    /// Append the server's stdout and stderr to this file (default: discard them).
    #[arg(long, value_name = "FILE")]
    pub server_log: Option<PathBuf>,
}

/// The result of `bench startup`, printed as one human line plus one JSON line.
#[derive(Clone, Debug, Serialize)]
pub struct StartupReport {
    /// Always `startup`.
    pub mode: &'static str,
    /// The command line.
    pub cmd: String,
    /// The probed address.
    pub server: String,
    /// Launches.
    pub repeat: u32,
    /// Launch to first served read of each launch, ms, in launch order.
    pub launch_to_read_ms: Vec<f64>,
    /// Median of those.
    pub median_ms: f64,
    /// Smallest.
    pub min_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl StartupReport {
    /// The human line.
    pub fn human_line(&self) -> String {
        format!(
            "startup launch->first read: median={} min={} max={} over {} launch(es) | \
             server={} cmd={}",
            human_ms(self.median_ms),
            human_ms(self.min_ms),
            human_ms(self.max_ms),
            self.repeat,
            self.server,
            self.cmd
        )
    }
}

/// The median of `values` (the mean of the middle two for an even count); 0 when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Runs `bench startup` and returns its report (the caller prints it).
pub async fn run_startup(args: &StartupArgs) -> Result<StartupReport, BenchError> {
    if args.cmd.trim().is_empty() {
        return Err(BenchError::InvalidArgs("--cmd is empty".to_owned()));
    }
    let mut launch_to_read_ms = Vec::with_capacity(args.repeat as usize);
    for launch in 1..=args.repeat {
        let elapsed = launch_once(args).await?;
        eprintln!(
            "ek-bench: launch {launch}/{}: first read after {}",
            args.repeat,
            human_ms(duration_ms(elapsed))
        );
        launch_to_read_ms.push(duration_ms(elapsed));
    }
    Ok(StartupReport {
        mode: "startup",
        cmd: args.cmd.clone(),
        server: args.server.clone(),
        repeat: args.repeat,
        median_ms: median(&launch_to_read_ms),
        min_ms: launch_to_read_ms
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min),
        max_ms: launch_to_read_ms.iter().copied().fold(0.0, f64::max),
        launch_to_read_ms,
    })
}

/// One launch: spawn, probe until a read is served, stop. Returns launch → read.
async fn launch_once(args: &StartupArgs) -> Result<Duration, BenchError> {
    let launched = Instant::now();
    let mut child = spawn(args)?;
    let timeout = Duration::from_secs_f64(args.timeout_s);
    let outcome = loop {
        if probe(&args.server, &args.path).await {
            break Ok(launched.elapsed());
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(BenchError::ServerExited {
                cmd: args.cmd.clone(),
                status,
            });
        }
        if launched.elapsed() > timeout {
            break Err(BenchError::StartupTimeout {
                cmd: args.cmd.clone(),
                timeout,
            });
        }
        sleep(Duration::from_millis(args.poll_ms)).await;
    };
    stop(&mut child, Duration::from_secs_f64(args.stop_timeout_s)).await;
    outcome
}

fn spawn(args: &StartupArgs) -> Result<Child, BenchError> {
    let spawn_error = |source| BenchError::Spawn {
        cmd: args.cmd.clone(),
        source,
    };
    let (stdout, stderr) = match &args.server_log {
        Some(path) => {
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(spawn_error)?;
            let log_err = log.try_clone().map_err(spawn_error)?;
            (Stdio::from(log), Stdio::from(log_err))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    // `exec` makes the server the shell's own process, and the new process group lets
    // the stop reach whatever the server starts in turn (a JVM behind a script).
    Command::new("sh")
        .arg("-c")
        .arg(format!("exec {}", args.cmd))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(spawn_error)
}

/// Whether the server serves a getData of `path` now (a new session, closed after).
async fn probe(server: &str, path: &str) -> bool {
    let Ok(mut conn) = Conn::connect(
        server,
        None,
        Zxid::ZERO,
        Duration::from_secs(10),
        PROBE_TIMEOUT,
    )
    .await
    else {
        return false;
    };
    let read = Request::GetData {
        path: path.to_owned(),
        watch: false,
    };
    let served =
        matches!(conn.call(&read, PROBE_TIMEOUT).await, Ok((header, _)) if header.err == 0);
    if served {
        conn.close(PROBE_TIMEOUT).await;
    }
    served
}

/// SIGTERM to the process group, then SIGKILL if it has not exited within `grace`; reaps
/// the child either way.
async fn stop(child: &mut Child, grace: Duration) {
    let group = Target::Group(child.id());
    if matches!(child.try_wait(), Ok(None)) {
        let _ = send_signal(group, Signal::Term);
        let deadline = Instant::now() + grace;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            sleep(Duration::from_millis(10)).await;
        }
    }
    // Also reaches children left behind by a server that exited on SIGTERM.
    let _ = send_signal(group, Signal::Kill);
    let _ = child.kill();
    let _ = child.wait();
}
