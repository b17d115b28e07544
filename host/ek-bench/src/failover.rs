//! `bench failover`: writers at a fixed rate against an ensemble; after a settle time the
//! leader (found with `srvr`) is killed with SIGKILL, and the report gives the longest gap
//! between successful writes and the time from the kill to the first write after it.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ek_types::{ErrorCode, Zxid};
use serde::Serialize;
use tokio::time::{sleep, sleep_until, Instant};

use crate::conn::{four_letter_word, srvr_mode, Conn};
use crate::process::{run_shell, send_signal, Signal, Target};
use crate::stats::{duration_ms, human_ms, new_histogram, round1, LatencySummary};
use crate::tree::{self, check_run_id, create_dirs, create_op, default_run_id, run_writes};
use crate::writer::{run_writer, WriterPlan, WriterResult};
use crate::{parse_secs, BenchError};

/// How long a `srvr` may take.
const SRVR_WAIT: Duration = Duration::from_secs(2);
/// How long to keep asking for a leader after the settle time.
const FIND_LEADER_FOR: Duration = Duration::from_secs(10);

/// `bench failover`: measures write unavailability when the leader is killed.
#[derive(Clone, Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("killer").required(true).multiple(true)
    .args(["pids", "kill_cmd"])))]
pub struct FailoverArgs {
    /// The ensemble's client addresses; writers start round-robin over them.
    #[arg(
        long,
        value_name = "HOST:PORT,...",
        value_delimiter = ',',
        required = true
    )]
    pub servers: Vec<String>,
    /// Writer sessions.
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub writers: u32,
    /// setData ops per second, all writers together.
    #[arg(long, value_name = "OPS_PER_S", default_value_t = 200.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Bytes written by each setData.
    #[arg(long, value_name = "BYTES", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(0..=16 << 20))]
    pub value_size: u32,
    /// Seconds of writing before the leader is killed.
    #[arg(long = "settle-s", visible_alias = "settle", value_name = "SECS",
          default_value_t = 5.0, value_parser = parse_secs)]
    pub settle_s: f64,
    /// Seconds of writing in all, settle time included.
    #[arg(long = "duration-s", visible_alias = "duration", value_name = "SECS",
          default_value_t = 30.0, value_parser = parse_secs)]
    pub duration_s: f64,
    /// The servers' process ids, HOST:PORT=PID,... with HOST:PORT as in --servers; the
    /// leader's process gets SIGKILL.
    #[arg(
        long,
        visible_alias = "leader-pids",
        value_name = "HOST:PORT=PID,...",
        value_delimiter = ','
    )]
    pub pids: Vec<ServerPid>,
    /// Shell command that kills the leader instead (run with sh -c, must exit 0); {addr},
    /// {host}, {port} and, when --pids names the leader, {pid} are replaced.
    #[arg(long, value_name = "COMMAND")]
    pub kill_cmd: Option<String>,
    /// Session timeout asked for, ms.
    #[arg(long, value_name = "MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64))]
    pub session_timeout_ms: u64,
    /// A write unanswered for this long counts as failed; the writer moves on to the
    /// next server, ms.
    #[arg(long, value_name = "MS", default_value_t = 2_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: u64,
    /// How long a connect plus handshake may take, ms.
    #[arg(long, value_name = "MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout_ms: u64,
    /// Names the run's tree, /ekbench/RUN_ID (default: UNIX_SECONDS-PID).
    #[arg(long, value_name = "RUN_ID")]
    pub run_id: Option<String>,
    /// Keep /ekbench/RUN_ID after the run instead of deleting it.
    #[arg(long)]
    pub keep: bool,
}

/// One `HOST:PORT=PID` of `--pids`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerPid {
    /// The client address, as in `--servers`.
    pub addr: String,
    /// The process id of that server.
    pub pid: u32,
}

impl FromStr for ServerPid {
    type Err = String;

    fn from_str(text: &str) -> Result<ServerPid, String> {
        let (addr, pid) = text
            .split_once('=')
            .ok_or_else(|| format!("'{text}': expected HOST:PORT=PID"))?;
        let pid = pid
            .trim()
            .parse()
            .map_err(|_| format!("'{text}': the PID must be a positive whole number"))?;
        if pid == 0 {
            return Err(format!("'{text}': the PID must be a positive whole number"));
        }
        Ok(ServerPid {
            addr: addr.trim().to_owned(),
            pid,
        })
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("'{text}': expected a rate above 0, e.g. 200")),
    }
}

/// The result of `bench failover`, printed as one human line plus one JSON line.
#[derive(Clone, Debug, Serialize)]
pub struct FailoverReport {
    /// Always `failover`.
    pub mode: &'static str,
    /// The run id; the tree was `/ekbench/<run_id>`.
    pub run_id: String,
    /// The servers, as given.
    pub servers: Vec<String>,
    /// Writer sessions.
    pub writers: u32,
    /// Target setData rate, all writers together, ops/s.
    pub rate_ops_s: f64,
    /// Value size, bytes.
    pub value_size: u32,
    /// Writing before the kill, seconds.
    pub settle_s: f64,
    /// Writing in all, seconds.
    pub duration_s: f64,
    /// The server killed.
    pub killed: String,
    /// Its `srvr` mode when found: `leader`, or `standalone` for a single server.
    pub killed_mode: String,
    /// Its process id, when `--pids` named it.
    pub killed_pid: Option<u32>,
    /// The server reporting `Mode: leader` at the end, if any.
    pub new_leader: Option<String>,
    /// Successful writes.
    pub writes_ok: u64,
    /// Failed writes: error codes, lost connections, timeouts.
    pub errors: u64,
    /// Reconnections, all writers together.
    pub reconnects: u64,
    /// Sessions found expired on reconnect (a new one was opened).
    pub expired_sessions: u64,
    /// Whether a write sent after the kill succeeded.
    pub recovered: bool,
    /// The longest time without a successful write (the end of the run closes the last
    /// gap), ms.
    pub longest_gap_ms: f64,
    /// When that gap began, relative to the kill (negative: before it), ms.
    pub longest_gap_start_ms: f64,
    /// From the kill to the reply of the first successful write sent after it, ms.
    pub kill_to_first_write_ms: Option<f64>,
    /// Latency of the successful writes.
    #[serde(flatten)]
    pub latency: LatencySummary,
}

impl FailoverReport {
    /// The human line.
    pub fn human_line(&self) -> String {
        format!(
            "failover killed={} ({}{}) longest_gap={} (from {} after the kill) \
             kill_to_first_write={} writes_ok={} errors={} reconnects={} expired_sessions={} \
             new_leader={} | writers={} rate={}/s duration={:.1}s servers={}",
            self.killed,
            self.killed_mode,
            self.killed_pid
                .map_or(String::new(), |pid| format!(", pid {pid}")),
            human_ms(self.longest_gap_ms),
            human_ms(self.longest_gap_start_ms),
            self.kill_to_first_write_ms
                .map_or("never".to_owned(), human_ms),
            self.writes_ok,
            self.errors,
            self.reconnects,
            self.expired_sessions,
            self.new_leader.as_deref().unwrap_or("none"),
            self.writers,
            self.rate_ops_s,
            self.duration_s,
            self.servers.join(",")
        )
    }
}

/// The longest gap between successful writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Gap {
    /// Its length, ms.
    pub(crate) length_ms: f64,
    /// Its start, ms relative to the kill.
    pub(crate) start_ms: f64,
}

/// The longest gap between the replies of successful writes, `replies_ms` (sorted, ms
/// relative to the kill), over a run from `start_ms` to `end_ms`. The time before the
/// first success is connection setup, not a gap; the time after the last one is, so a
/// run that never recovers reports its last success → end.
pub(crate) fn longest_gap(replies_ms: &[f64], start_ms: f64, end_ms: f64) -> Gap {
    let Some((&first, rest)) = replies_ms.split_first() else {
        return Gap {
            length_ms: end_ms - start_ms,
            start_ms,
        };
    };
    let mut longest = Gap {
        length_ms: 0.0,
        start_ms: first,
    };
    let mut previous = first;
    for &at in rest.iter().chain([&end_ms]) {
        if at - previous > longest.length_ms {
            longest = Gap {
                length_ms: at - previous,
                start_ms: previous,
            };
        }
        previous = at;
    }
    longest
}

/// The reply time of the first successful write sent at or after the kill, from
/// `(sent, reply)` pairs in ms relative to the kill. A write sent before the kill and
/// answered by the dying leader is no sign of recovery.
pub(crate) fn first_write_after_kill(successes_ms: &[(f64, f64)]) -> Option<f64> {
    successes_ms
        .iter()
        .filter(|(sent, _)| *sent >= 0.0)
        .map(|(_, reply)| *reply)
        .min_by(f64::total_cmp)
}

/// Milliseconds rounded to the microsecond (differences of rounded values carry float
/// noise).
fn round_us(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Runs `bench failover` and returns its report (the caller prints it).
pub async fn run_failover(args: &FailoverArgs) -> Result<FailoverReport, BenchError> {
    let servers = check_args(args)?;
    let run_id = args.run_id.clone().unwrap_or_else(default_run_id);
    check_run_id(&run_id)?;
    let root = format!("{}/{run_id}", tree::BENCH_ROOT);
    let key_prefix = format!("{root}/w");
    let value = vec![b'v'; args.value_size as usize];
    let keys: Vec<String> = (0..args.writers)
        .map(|i| format!("{key_prefix}{i}"))
        .collect();
    setup(args, &servers, &root, &keys, &value).await?;
    eprintln!(
        "ek-bench: {} writers at {}/s over {} server(s); killing the leader after {:.1}s",
        args.writers,
        args.rate,
        servers.len(),
        args.settle_s
    );

    let start = Instant::now();
    let plan = Arc::new(WriterPlan {
        servers: servers.clone(),
        key_prefix,
        value,
        interval: Duration::from_secs_f64(f64::from(args.writers) / args.rate),
        writers: args.writers as usize,
        start,
        end: start + Duration::from_secs_f64(args.duration_s),
        session_timeout: Duration::from_millis(args.session_timeout_ms),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        connect_timeout: Duration::from_millis(args.connect_timeout_ms),
    });
    let tasks: Vec<_> = (0..plan.writers)
        .map(|index| tokio::spawn(run_writer(Arc::clone(&plan), index)))
        .collect();
    sleep_until(start + Duration::from_secs_f64(args.settle_s)).await;
    let paths: Vec<String> = keys.into_iter().chain([root]).collect();
    let killed = match find_and_kill(args, &servers, plan.end).await {
        Ok(killed) => killed,
        Err(error) => {
            tasks.iter().for_each(|task| task.abort());
            cleanup(args, &servers, paths).await;
            return Err(error);
        }
    };
    eprintln!("ek-bench: killed {} ({})", killed.addr, killed.mode);
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(
            task.await
                .map_err(|error| BenchError::Task(error.to_string()))?,
        );
    }
    let new_leader = find_leader(&servers).await.ok().map(|(addr, _)| addr);
    cleanup(args, &servers, paths).await;
    Ok(report(
        args, run_id, servers, killed, new_leader, &plan, &results,
    ))
}

fn check_args(args: &FailoverArgs) -> Result<Vec<String>, BenchError> {
    let servers: Vec<String> = args
        .servers
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if servers.is_empty() {
        return Err(BenchError::InvalidArgs("--servers is empty".to_owned()));
    }
    if args.settle_s >= args.duration_s {
        return Err(BenchError::InvalidArgs(format!(
            "--settle-s {} must be below --duration-s {}",
            args.settle_s, args.duration_s
        )));
    }
    Ok(servers)
}

/// Opens a session on the first server that accepts one.
async fn connect_any(args: &FailoverArgs, servers: &[String]) -> Result<Conn, BenchError> {
    let mut last_error = None;
    for addr in servers {
        match Conn::connect(
            addr,
            None,
            Zxid::ZERO,
            Duration::from_millis(args.session_timeout_ms),
            Duration::from_millis(args.connect_timeout_ms).max(Duration::from_secs(5)),
        )
        .await
        {
            Ok(conn) => return Ok(conn),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| BenchError::InvalidArgs("--servers is empty".to_owned())))
}

async fn setup(
    args: &FailoverArgs,
    servers: &[String],
    root: &str,
    keys: &[String],
    value: &[u8],
) -> Result<(), BenchError> {
    let wait = Duration::from_secs(10);
    let mut conn = connect_any(args, servers).await?;
    create_dirs(&mut conn, root, &[], wait).await?;
    let ops = keys
        .iter()
        .map(|key| create_op(key.clone(), value.to_vec()));
    run_writes(&mut conn, ops, &[ErrorCode::NodeExists], wait).await?;
    conn.close(wait).await;
    Ok(())
}

/// Deletes the run's tree unless `--keep`; a failure is only reported (the ensemble may
/// not have recovered), as it must not hide the measurement.
async fn cleanup(args: &FailoverArgs, servers: &[String], paths: Vec<String>) {
    if args.keep {
        return;
    }
    let wait = Duration::from_secs(10);
    let deleted = async {
        let mut conn = connect_any(args, servers).await?;
        tree::delete_all(&mut conn, paths, wait).await?;
        conn.close(wait).await;
        Ok::<(), BenchError>(())
    };
    if let Err(error) = deleted.await {
        eprintln!("ek-bench: cleanup failed: {error}");
    }
}

/// The server killed.
#[derive(Clone, Debug)]
struct Killed {
    addr: String,
    mode: String,
    pid: Option<u32>,
    /// When the kill command returned: SIGKILL was delivered.
    at: Instant,
}

/// Finds the leader (retrying for a while, never past `end`) and kills it.
async fn find_and_kill(
    args: &FailoverArgs,
    servers: &[String],
    end: Instant,
) -> Result<Killed, BenchError> {
    let give_up = (Instant::now() + FIND_LEADER_FOR).min(end);
    let (addr, mode) = loop {
        match find_leader(servers).await {
            Ok(found) => break found,
            Err(error) if Instant::now() >= give_up => return Err(error),
            Err(_) => sleep(Duration::from_millis(200)).await,
        }
    };
    let pid = args
        .pids
        .iter()
        .find(|entry| entry.addr == addr)
        .map(|entry| entry.pid);
    let killing = match (&args.kill_cmd, pid) {
        (Some(template), _) => run_shell(&kill_command(template, &addr, pid)),
        (None, Some(pid)) => send_signal(Target::Pid(pid), Signal::Kill),
        (None, None) => Err(format!("--pids names no process for the leader {addr}")),
    };
    killing.map_err(BenchError::Kill)?;
    let at = Instant::now();
    Ok(Killed {
        addr,
        mode,
        pid,
        at,
    })
}

/// `--kill-cmd` with its placeholders replaced.
pub(crate) fn kill_command(template: &str, addr: &str, pid: Option<u32>) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, ""));
    let mut command = template
        .replace("{addr}", addr)
        .replace("{host}", host)
        .replace("{port}", port);
    if let Some(pid) = pid {
        command = command.replace("{pid}", &pid.to_string());
    }
    command
}

/// The server whose `srvr` says `Mode: leader`, or the only server when it is standalone.
/// Returns its address and mode.
async fn find_leader(servers: &[String]) -> Result<(String, String), BenchError> {
    let mut modes = BTreeMap::new();
    for addr in servers {
        let mode = match four_letter_word(addr, "srvr", SRVR_WAIT).await {
            Ok(answer) => srvr_mode(&answer).unwrap_or("no Mode line").to_owned(),
            Err(error) => format!("no answer ({error})"),
        };
        let is_target = mode == "leader" || (servers.len() == 1 && mode == "standalone");
        if is_target {
            return Ok((addr.clone(), mode));
        }
        modes.insert(addr.clone(), mode);
    }
    let summary: Vec<String> = modes
        .into_iter()
        .map(|(addr, mode)| format!("{addr}: {mode}"))
        .collect();
    Err(BenchError::NoLeader(summary.join("; ")))
}

fn report(
    args: &FailoverArgs,
    run_id: String,
    servers: Vec<String>,
    killed: Killed,
    new_leader: Option<String>,
    plan: &WriterPlan,
    results: &[WriterResult],
) -> FailoverReport {
    let relative_ms = |at: Instant| {
        if at >= killed.at {
            duration_ms(at - killed.at)
        } else {
            -duration_ms(killed.at - at)
        }
    };
    let successes: Vec<(f64, f64)> = results
        .iter()
        .flat_map(|result| result.successes.iter())
        .map(|&(sent, reply)| (relative_ms(sent), relative_ms(reply)))
        .collect();
    let mut replies: Vec<f64> = successes.iter().map(|&(_, reply)| reply).collect();
    replies.sort_by(f64::total_cmp);
    let gap = longest_gap(&replies, relative_ms(plan.start), relative_ms(plan.end));
    let first_write = first_write_after_kill(&successes);
    let mut latency_us = new_histogram();
    for result in results {
        let _ = latency_us.add(&result.latency_us);
    }
    FailoverReport {
        mode: "failover",
        run_id,
        servers,
        writers: args.writers,
        rate_ops_s: round1(args.rate),
        value_size: args.value_size,
        settle_s: args.settle_s,
        duration_s: args.duration_s,
        killed: killed.addr,
        killed_mode: killed.mode,
        killed_pid: killed.pid,
        new_leader,
        writes_ok: successes.len() as u64,
        errors: results.iter().map(|r| r.errors).sum(),
        reconnects: results.iter().map(|r| r.reconnects).sum(),
        expired_sessions: results.iter().map(|r| r.expired_sessions).sum(),
        recovered: first_write.is_some(),
        longest_gap_ms: round_us(gap.length_ms),
        longest_gap_start_ms: round_us(gap.start_ms),
        kill_to_first_write_ms: first_write,
        latency: LatencySummary::of(&latency_us),
    }
}
