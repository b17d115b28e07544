//! Runs each bench mode against the real `edgekeeper` binary on loopback: tiny runs that
//! check counts and report shapes, never timings.
//!
//! The binary is `$EDGEKEEPER_BIN`, else `target/<profile>/edgekeeper` beside this test's
//! `deps/` folder (`cargo build -p edgekeeper`). Without it each test prints why and
//! passes: this crate does not build the binary itself.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use ek_bench::{run_failover, run_load, run_startup, BenchArgs, BenchMode};
use tempfile::TempDir;

/// How long the server may take to start serving.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `edgekeeper bench`'s arguments, parsed as the binary parses them.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    bench: BenchArgs,
}

fn parse(args: &[&str]) -> BenchMode {
    let argv = std::iter::once("bench").chain(args.iter().copied());
    Cli::try_parse_from(argv)
        .unwrap_or_else(|error| panic!("bad test arguments: {error}"))
        .bench
        .mode
}

/// `$EDGEKEEPER_BIN`, else `target/<profile>/edgekeeper`; `None` (with a message) when
/// it is not built.
fn edgekeeper_bin() -> Option<PathBuf> {
    let bin = match std::env::var_os("EDGEKEEPER_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => {
            let exe = std::env::current_exe().expect("current_exe");
            // target/<profile>/deps/bench-<hash> -> target/<profile>/edgekeeper
            let profile_dir = exe.parent().and_then(Path::parent)?;
            profile_dir.join(format!("edgekeeper{}", std::env::consts::EXE_SUFFIX))
        }
    };
    if bin.is_file() {
        Some(bin)
    } else {
        eprintln!(
            "skipping: edgekeeper binary not found at {}; build it with \
             `cargo build -p edgekeeper` or set EDGEKEEPER_BIN",
            bin.display()
        );
        None
    }
}

/// A standalone edgekeeper on free loopback ports with its own data directory; killed on
/// drop.
struct Server {
    bin: PathBuf,
    child: Option<Child>,
    addr: SocketAddr,
    dir: TempDir,
}

impl Server {
    /// Writes the config; does not start the server.
    fn new(bin: PathBuf) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("ek-bench-")
            .tempdir()
            .expect("create a temp dir");
        let addr = free_addr();
        let config = format!(
            "data_dir = \"{}\"\n\
             client_addr = \"{addr}\"\n\
             admin_addr = \"{}\"\n\
             tick_ms = 500\n\
             min_session_timeout_ms = 1000\n\
             max_session_timeout_ms = 60000\n\
             max_client_connections = 0\n\
             \n\
             [log]\n\
             level = \"warn\"\n",
            dir.path().join("data").display(),
            free_addr()
        );
        fs::write(dir.path().join("edgekeeper.toml"), config).expect("write the config");
        Server {
            bin,
            child: None,
            addr,
            dir,
        }
    }

    /// The command line that starts this server.
    fn command_line(&self) -> String {
        format!(
            "'{}' serve --config '{}'",
            self.bin.display(),
            self.dir.path().join("edgekeeper.toml").display()
        )
    }

    /// Starts the server and waits until it serves.
    fn start(mut self) -> Server {
        let log = fs::File::create(self.dir.path().join("server.log")).expect("create the log");
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg("--config")
            .arg(self.dir.path().join("edgekeeper.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log"))
            .stderr(log)
            .spawn()
            .expect("start edgekeeper");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while srvr(self.addr).is_none_or(|answer| !answer.contains("Mode:")) {
            assert!(
                Instant::now() < deadline,
                "edgekeeper did not start serving"
            );
            thread::sleep(Duration::from_millis(20));
        }
        self
    }

    fn addr(&self) -> String {
        self.addr.to_string()
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("started").id()
    }

    /// The `Node count:` of `srvr`.
    fn node_count(&self) -> u64 {
        let answer = srvr(self.addr).expect("srvr answers");
        answer
            .lines()
            .find_map(|line| line.strip_prefix("Node count:"))
            .and_then(|count| count.trim().parse().ok())
            .expect("srvr has a node count")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local_addr")
}

fn srvr(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"srvr").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_runs_the_exact_op_count_and_cleans_up() {
    let Some(bin) = edgekeeper_bin() else { return };
    let server = Server::new(bin).start();
    let nodes_before = server.node_count();
    let addr = server.addr();
    let BenchMode::Load(args) = parse(&[
        "load",
        "--servers",
        &format!("{addr},{addr}"),
        "--sessions",
        "3",
        "--in-flight",
        "2",
        "--mix",
        "create=1,setData=1,getData=1,exists=1,multi=1",
        "--keys",
        "20",
        "--value-size",
        "64",
        "--warmup-s",
        "0.2",
        "--ops",
        "200",
    ]) else {
        panic!("not load")
    };
    let report = run_load(&args).await.expect("the bench runs");
    assert_eq!(report.ops, 200, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.per_op.len(), 5);
    assert_eq!(report.per_op.values().map(|op| op.ops).sum::<u64>(), 200);
    assert_eq!((report.sessions, report.in_flight), (3, 2));
    let json: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&report).unwrap()).expect("JSON");
    assert_eq!(json["mode"], "load");
    assert_eq!(json["ops"], 200);
    assert!(json["per_op"]["multi"]["p99_ms"].is_number());
    assert!(report.human_lines().last().unwrap().starts_with("total"));
    assert_eq!(
        server.node_count(),
        nodes_before,
        "cleanup removed /ekbench and everything below it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_by_duration_keeps_the_tree_when_asked() {
    let Some(bin) = edgekeeper_bin() else { return };
    let server = Server::new(bin).start();
    let nodes_before = server.node_count();
    let BenchMode::Load(args) = parse(&[
        "load",
        "--servers",
        &server.addr(),
        "--sessions",
        "1",
        "--keys",
        "5",
        "--mix",
        "getData=1",
        "--warmup",
        "0",
        "--duration",
        "0.3",
        "--run-id",
        "kept",
        "--keep",
    ]) else {
        panic!("not load")
    };
    let report = run_load(&args).await.expect("the bench runs");
    assert!(report.ops > 0 && report.errors == 0, "{report:?}");
    assert_eq!(report.run_id, "kept");
    // /ekbench, /ekbench/kept, /ekbench/kept/new and 5 keys.
    assert_eq!(server.node_count(), nodes_before + 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_times_each_launch() {
    let Some(bin) = edgekeeper_bin() else { return };
    let server = Server::new(bin);
    let BenchMode::Startup(args) = parse(&[
        "startup",
        "--cmd",
        &server.command_line(),
        "--server",
        &server.addr(),
        "--repeat",
        "2",
        "--timeout-s",
        "60",
    ]) else {
        panic!("not startup")
    };
    let report = run_startup(&args).await.expect("the bench runs");
    assert_eq!(report.launch_to_read_ms.len(), 2);
    assert!(report.min_ms > 0.0 && report.min_ms <= report.median_ms);
    assert!(report.median_ms <= report.max_ms);
    assert!(srvr(server.addr).is_none(), "the server was stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_kills_a_standalone_server_and_reports_no_recovery() {
    let Some(bin) = edgekeeper_bin() else { return };
    let mut server = Server::new(bin).start();
    let addr = server.addr();
    let pids = format!("{addr}={}", server.pid());
    let BenchMode::Failover(args) = parse(&[
        "failover",
        "--servers",
        &addr,
        "--pids",
        &pids,
        "--writers",
        "2",
        "--rate",
        "40",
        "--settle-s",
        "0.8",
        "--duration-s",
        "1.6",
    ]) else {
        panic!("not failover")
    };
    let report = run_failover(&args).await.expect("the bench runs");
    assert_eq!(report.killed, addr);
    assert_eq!(report.killed_mode, "standalone");
    assert_eq!(report.killed_pid, Some(server.pid()));
    assert!(report.writes_ok > 0, "{report:?}");
    assert!(
        !report.recovered,
        "nothing restarts a killed standalone server"
    );
    assert_eq!(report.kill_to_first_write_ms, None);
    assert!(report.longest_gap_ms > 0.0);
    let child = server.child.as_mut().expect("started");
    let status = child.wait().expect("reap the server");
    assert!(!status.success(), "killed with SIGKILL: {status:?}");
    let json: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&report).unwrap()).expect("JSON");
    assert_eq!(json["recovered"], false);
    assert!(json["kill_to_first_write_ms"].is_null());
}
