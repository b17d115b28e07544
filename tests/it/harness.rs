//! Starts one server process on loopback for a test and stops it when the test ends.
//!
//! The server is edgekeeper unless `EK_TEST_ZOOKEEPER=1`, in which case it is the real
//! Apache ZooKeeper (Debian package `zookeeper`) run by `tests/scripts/run-zookeeper.sh`,
//! the oracle that proves the tests themselves right. Either way a server is ready when its
//! client port answers the four-letter word `ruok` with `imok` and `srvr` with anything but
//! "This ZooKeeper instance is not currently serving requests".
//!
//! edgekeeper is found at `$EDGEKEEPER_BIN`, else next to the test binary's `deps/` folder
//! (`target/<profile>/edgekeeper`, built by `cargo build --workspace --bins`), and started as
//! `edgekeeper serve --config <dir>/edgekeeper.toml`, with a config written here.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long any single wait in these tests may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// How long a server may take to start answering `ruok` (a JVM on a busy machine is slow).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Which server implementation the tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// The edgekeeper binary.
    Edgekeeper,
    /// Apache ZooKeeper through `tests/scripts/run-zookeeper.sh`.
    ZooKeeper,
}

impl Flavor {
    /// The flavor chosen by the environment (`EK_TEST_ZOOKEEPER=1` picks ZooKeeper).
    pub(crate) fn from_env() -> Flavor {
        match std::env::var("EK_TEST_ZOOKEEPER").as_deref() {
            Ok("1") | Ok("true") | Ok("yes") => Flavor::ZooKeeper,
            _ => Flavor::Edgekeeper,
        }
    }
}

/// One running server with its own data directory; killed (SIGKILL) on drop.
pub(crate) struct Server {
    flavor: Flavor,
    /// Extra top-level TOML lines for edgekeeper's config.
    extra_config: String,
    child: Option<Child>,
    client_addr: SocketAddr,
    admin_addr: SocketAddr,
    dir: TempDir,
}

impl Server {
    /// Starts a fresh server (empty data directory) of the flavor the environment picks
    /// and waits until it answers `ruok`.
    pub(crate) fn start() -> Server {
        Server::start_with("")
    }

    /// Starts a fresh server whose edgekeeper config also has `extra_config` (top-level TOML
    /// lines; ignored for ZooKeeper).
    pub(crate) fn start_with(extra_config: &str) -> Server {
        let flavor = Flavor::from_env();
        let dir = tempfile::Builder::new()
            .prefix("ek-it-")
            .tempdir()
            .expect("create a temp dir");
        let mut server = Server {
            flavor,
            extra_config: extra_config.to_owned(),
            child: None,
            client_addr: free_addr(),
            admin_addr: free_addr(),
            dir,
        };
        server.spawn();
        server
    }

    /// Which implementation this is.
    pub(crate) fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The client address as a connect string, `127.0.0.1:<port>`.
    pub(crate) fn addr(&self) -> String {
        self.client_addr.to_string()
    }

    /// The client address.
    pub(crate) fn socket_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The admin HTTP address (edgekeeper's `/metrics`, `/healthz`).
    pub(crate) fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Kills the server process with SIGKILL (no clean shutdown) and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already exited is fine: kill then fails, wait still reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data directory and ports; waits for `ruok`.
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The server's data directory (edgekeeper's `data_dir`).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server again on the same data directory, expecting it to refuse to start:
    /// returns its exit status and log, or panics if it becomes ready or keeps running.
    pub(crate) fn restart_expecting_failure(&mut self) -> (std::process::ExitStatus, String) {
        self.kill();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the server log");
        let mut command = self.edgekeeper_command();
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        let mut child = command.spawn().expect("start edgekeeper");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return (status, self.log_tail());
            }
            if is_serving(self.client_addr) || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "edgekeeper started on a data dir it should refuse; log:\n{}",
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the server's log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn spawn(&mut self) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the server log");
        let mut command = match self.flavor {
            Flavor::Edgekeeper => self.edgekeeper_command(),
            Flavor::ZooKeeper => self.zookeeper_command(),
        };
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {:?}: {error}", self.flavor));
        self.child = Some(child);
        self.wait_ready();
    }

    fn edgekeeper_command(&self) -> Command {
        let bin = edgekeeper_bin();
        assert!(
            bin.is_file(),
            "edgekeeper binary not found at {}: build it with `cargo build --workspace --bins`, \
             set EDGEKEEPER_BIN, or run against Apache ZooKeeper with EK_TEST_ZOOKEEPER=1",
            bin.display()
        );
        let data_dir = self.dir.path().join("data");
        let config_path = self.dir.path().join("edgekeeper.toml");
        fs::write(
            &config_path,
            edgekeeper_config(
                &data_dir,
                self.client_addr,
                self.admin_addr,
                &self.extra_config,
            ),
        )
        .expect("write edgekeeper.toml");
        let mut command = Command::new(bin);
        command.arg("serve").arg("--config").arg(config_path);
        command
    }

    fn zookeeper_command(&self) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/run-zookeeper.sh");
        let mut command = Command::new("bash");
        command
            .arg(script)
            .arg(self.client_addr.port().to_string())
            .arg(self.dir.path().join("zk"));
        command
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if is_serving(self.client_addr) {
                return;
            }
            let child = self.child.as_mut().expect("spawned");
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{:?} exited with {status} before it was ready; log:\n{}",
                    self.flavor,
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{:?} did not answer ruok on {} within {START_TIMEOUT:?}; log:\n{}",
                    self.flavor,
                    self.client_addr,
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The config the harness gives edgekeeper: loopback only, fast ticks and reaping, the same
/// timing as `run-zookeeper.sh` gives ZooKeeper. Keys are `ek_server::Config`'s field names.
fn edgekeeper_config(
    data_dir: &Path,
    client_addr: SocketAddr,
    admin_addr: SocketAddr,
    extra_config: &str,
) -> String {
    format!(
        "{extra_config}\n\
         data_dir = \"{}\"\n\
         client_addr = \"{client_addr}\"\n\
         admin_addr = \"{admin_addr}\"\n\
         tick_ms = 500\n\
         min_session_timeout_ms = 1000\n\
         max_session_timeout_ms = 60000\n\
         reaper_interval_ms = 500\n\
         max_client_connections = 0\n\
         \n\
         [log]\n\
         level = \"info\"\n",
        data_dir.display()
    )
}

/// `$EDGEKEEPER_BIN`, else `target/<profile>/edgekeeper` beside this test binary's `deps/`.
pub(crate) fn edgekeeper_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("EDGEKEEPER_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/it-<hash> -> target/<profile>/edgekeeper
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary under target/<profile>/deps");
    profile_dir.join(format!("edgekeeper{}", std::env::consts::EXE_SUFFIX))
}

/// Whether the server answers `ruok` with `imok` and `srvr` without "not currently serving
/// requests". ZooKeeper answers `ruok` as soon as it listens, before it accepts sessions;
/// `srvr` tells the difference.
fn is_serving(addr: SocketAddr) -> bool {
    four_letter_word(addr, "ruok").is_ok_and(|answer| answer == "imok")
        && four_letter_word(addr, "srvr")
            .is_ok_and(|answer| !answer.contains("not currently serving"))
}

/// A loopback address with a port that was free a moment ago.
pub(crate) fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local_addr")
}

/// Sends a four-letter word and returns the whole answer (the server closes after it).
pub(crate) fn four_letter_word(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(word.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Polls `condition` until it holds; panics with `what` after [`WAIT`].
pub(crate) async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Awaits `future`, failing the test if it takes longer than [`WAIT`].
pub(crate) async fn bounded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// A `zookeeper-client` session on `server` with a 10 s session timeout.
pub(crate) async fn client(server: &Server) -> zookeeper_client::Client {
    client_with(server, |connector| connector).await
}

/// A `zookeeper-client` session on `server`, its connector adjusted by `adjust`.
pub(crate) async fn client_with(
    server: &Server,
    adjust: impl FnOnce(zookeeper_client::Connector) -> zookeeper_client::Connector,
) -> zookeeper_client::Client {
    let connector =
        zookeeper_client::Client::connector().with_session_timeout(Duration::from_secs(10));
    let addr = server.addr();
    let connect = adjust(connector).connect(&addr);
    match bounded("connect", connect).await {
        Ok(client) => client,
        Err(error) => panic!(
            "cannot connect to {}: {error}; server log:\n{}",
            server.addr(),
            server.log_tail()
        ),
    }
}

/// The Python interpreter for the zkCli and kazoo tests: `$EK_PYTHON`, else Debian's
/// /usr/bin/python3 (where apt puts python3-kazoo and python3-pytest), else `python3`.
pub(crate) fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("EK_PYTHON") {
        return PathBuf::from(python);
    }
    let debian = PathBuf::from("/usr/bin/python3");
    if debian.is_file() {
        debian
    } else {
        PathBuf::from("python3")
    }
}

/// How long a helper program (zkCli, pytest) may run.
const HELPER_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `command` to completion with captured output, killing it after [`HELPER_TIMEOUT`].
pub(crate) fn run_bounded(command: Command, what: &str) -> std::process::Output {
    Helper::spawn(command, what).finish()
}

/// A helper program (pytest, zkCli) running with captured output; killed if dropped
/// before it finishes.
pub(crate) struct Helper {
    what: String,
    child: Child,
    started: Instant,
    out: Option<thread::JoinHandle<Vec<u8>>>,
    err: Option<thread::JoinHandle<Vec<u8>>>,
}

impl Helper {
    /// Starts `command` with stdin closed and stdout and stderr captured.
    pub(crate) fn spawn(mut command: Command, what: &str) -> Helper {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {what}: {error}"));
        // Drain the pipes on threads so a chatty child cannot block on a full pipe.
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let out = thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stdout.read_to_end(&mut bytes);
            bytes
        });
        let err = thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stderr.read_to_end(&mut bytes);
            bytes
        });
        Helper {
            what: what.to_owned(),
            child,
            started: Instant::now(),
            out: Some(out),
            err: Some(err),
        }
    }

    /// Whether the program has exited.
    pub(crate) fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the program to exit (killing it and failing the test if it runs past
    /// [`HELPER_TIMEOUT`] in all) and returns its status and output.
    pub(crate) fn finish(mut self) -> std::process::Output {
        let deadline = self.started + HELPER_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the helper") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not finish within {HELPER_TIMEOUT:?}", self.what);
            }
            thread::sleep(Duration::from_millis(50));
        };
        let join = |reader: Option<thread::JoinHandle<Vec<u8>>>| {
            reader
                .map(|reader| reader.join().expect("pipe reader"))
                .unwrap_or_default()
        };
        std::process::Output {
            status,
            stdout: join(self.out.take()),
            stderr: join(self.err.take()),
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if !self.has_exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How long one test may take in all; each wait inside it is bounded by [`WAIT`] too.
const TEST_DEADLINE: Duration = Duration::from_secs(180);

/// Runs a test body, failing the test if it does not finish within [`TEST_DEADLINE`], so a
/// server that never answers fails the test instead of hanging the suite.
pub(crate) async fn deadline(body: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(TEST_DEADLINE, body).await.is_err() {
        panic!("test did not finish within {TEST_DEADLINE:?}: a request got no reply?");
    }
}

/// Files in `dir` whose names start with `prefix`, sorted (none if `dir` is unreadable).
pub(crate) fn files_in(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .is_some_and(|name| name.to_string_lossy().starts_with(prefix))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
