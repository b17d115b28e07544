//! Runs each node of a local cluster as a child `edgekeeper serve` process, reports the
//! ones that exit, and stops them all on Ctrl-C or SIGTERM.
//!
//! A node that exits on its own is reported and left down; the others keep running, so
//! the operator can watch the ensemble cope and restart the node by hand. Stopping sends
//! SIGTERM (a node shuts down cleanly on it), then SIGKILL to whatever is left after
//! [`STOP_GRACE`] or on a second Ctrl-C.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;

use super::{node_line, Node};

/// How often the children are checked for an exit.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long a stopping node gets before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running node.
#[derive(Debug)]
pub(super) struct Child {
    node: Node,
    process: std::process::Child,
    /// Set once the process has been waited for; its pid is free for reuse from then on,
    /// so it is never signalled again.
    status: Option<ExitStatus>,
}

/// Starts every node, prints one line per node, then waits for Ctrl-C or SIGTERM and stops
/// them. Returns an error if every node has exited on its own.
pub(super) fn run(nodes: &[Node]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the edgekeeper executable")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let mut children = Vec::with_capacity(nodes.len());
        for node in nodes {
            match spawn(&exe, node) {
                Ok(child) => {
                    println!("{}", node_line(node, Some(child.process.id())));
                    children.push(child);
                }
                Err(error) => {
                    stop(&mut children, STOP_GRACE).await?;
                    return Err(error);
                }
            }
        }
        eprintln!(
            "{} nodes running; each logs to its edgekeeper.log. Ctrl-C stops them all.",
            children.len()
        );
        supervise(&mut children).await
    })
}

/// Starts `edgekeeper serve --config <config>` with stdout and stderr appended to the
/// node's log.
fn spawn(exe: &Path, node: &Node) -> anyhow::Result<Child> {
    let log_path = node.log_path();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let log_for_stderr = log
        .try_clone()
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let process = Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(&node.config_path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_for_stderr)
        .spawn()
        .with_context(|| format!("cannot start node {} ({})", node.id, exe.display()))?;
    Ok(Child {
        node: node.clone(),
        process,
        status: None,
    })
}

/// Reports nodes that exit until the shutdown signal, then stops the rest.
async fn supervise(children: &mut [Child]) -> anyhow::Result<()> {
    let shutdown = crate::shutdown_signal();
    tokio::pin!(shutdown);
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    loop {
        tokio::select! {
            () = &mut shutdown => return stop(children, STOP_GRACE).await,
            _ = ticker.tick() => {
                for child in reap(children)? {
                    report_exit(child);
                }
                anyhow::ensure!(
                    children.iter().any(|child| child.status.is_none()),
                    "every node has exited; see their edgekeeper.log files"
                );
            }
        }
    }
}

fn report_exit(child: &Child) {
    let status = child
        .status
        .map_or_else(String::new, |status| status.to_string());
    println!("node {} exited: {status}", child.node.id);
    eprintln!(
        "  log: {}\n  restart it with: edgekeeper serve --config {}",
        child.node.log_path().display(),
        child.node.config_path.display()
    );
}

/// Waits for the children that have exited and returns them.
fn reap(children: &mut [Child]) -> anyhow::Result<Vec<&Child>> {
    let mut exited = Vec::new();
    for child in children.iter_mut() {
        if child.status.is_some() {
            continue;
        }
        let polled = child
            .process
            .try_wait()
            .with_context(|| format!("cannot wait for node {}", child.node.id))?;
        if let Some(status) = polled {
            child.status = Some(status);
            exited.push(&*child);
        }
    }
    Ok(exited)
}

/// SIGTERM to every running child; SIGKILL to those still running after `grace` or on a
/// second Ctrl-C. Prints `node <id> stopped: <status>` for each.
async fn stop(children: &mut [Child], grace: Duration) -> anyhow::Result<()> {
    let running = children
        .iter()
        .filter(|child| child.status.is_none())
        .count();
    if running == 0 {
        return Ok(());
    }
    eprintln!(
        "stopping {running} nodes (SIGTERM; SIGKILL after {} s or on a second Ctrl-C)",
        grace.as_secs()
    );
    for child in children.iter_mut().filter(|child| child.status.is_none()) {
        terminate(&mut child.process);
    }
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        for child in reap(children)? {
            print_stopped(child);
        }
        if children.iter().all(|child| child.status.is_some()) {
            return Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL / 2) => {}
            () = &mut deadline => break,
            Ok(()) = &mut interrupt => break,
        }
    }
    for child in children.iter_mut().filter(|child| child.status.is_none()) {
        kill(child)?;
        print_stopped(child);
    }
    Ok(())
}

fn print_stopped(child: &Child) {
    if let Some(status) = child.status {
        println!("node {} stopped: {status}", child.node.id);
    }
}

/// SIGKILL, then wait.
fn kill(child: &mut Child) -> anyhow::Result<()> {
    let id = child.node.id;
    match child.process.kill() {
        Ok(()) => {}
        // It exited since the last poll; the wait below collects it.
        Err(error) if error.kind() == io::ErrorKind::InvalidInput => {}
        Err(error) => return Err(error).with_context(|| format!("cannot kill node {id}")),
    }
    let status = child
        .process
        .wait()
        .with_context(|| format!("cannot wait for node {id}"))?;
    child.status = Some(status);
    Ok(())
}

/// Asks a child to shut down cleanly with SIGTERM. The workspace forbids `unsafe`, which
/// `libc::kill` needs, so this runs kill(1); if that cannot run, the child gets SIGKILL.
#[cfg(unix)]
fn terminate(process: &mut std::process::Child) {
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(process.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if sent.is_err() {
        let _ = process.kill();
    }
}

/// Elsewhere there is no SIGTERM: stop the child outright.
#[cfg(not(unix))]
fn terminate(process: &mut std::process::Child) {
    let _ = process.kill();
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;
    use std::path::PathBuf;
    use std::time::Instant;

    use ek_server::MemberRole;

    use super::*;

    fn child(id: u64, script: &str) -> Child {
        let process = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sh");
        child_of(id, process)
    }

    fn child_of(id: u64, process: std::process::Child) -> Child {
        Child {
            node: Node {
                id,
                role: MemberRole::Voter,
                client_addr: "127.0.0.1:2181".parse().unwrap(),
                dir: PathBuf::from("/nonexistent"),
                config_path: PathBuf::from("/nonexistent/edgekeeper.toml"),
            },
            process,
            status: None,
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn stop_sends_sigterm_and_waits() {
        let mut children = vec![child(1, "exec sleep 30"), child(2, "exec sleep 30")];
        let started = Instant::now();
        block_on(stop(&mut children, Duration::from_secs(10))).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        for child in &children {
            assert_eq!(child.status.and_then(|status| status.signal()), Some(15));
        }
    }

    #[test]
    fn stop_kills_a_child_that_ignores_sigterm() {
        use std::io::BufRead as _;
        // An ignored signal stays ignored across exec; `ready` comes once the trap is set.
        let process = Command::new("sh")
            .arg("-c")
            .arg("trap '' TERM; echo ready; exec sleep 30")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn sh");
        let mut children = vec![child_of(1, process)];
        let stdout = children[0].process.stdout.take().unwrap();
        let mut line = String::new();
        io::BufReader::new(stdout).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        block_on(stop(&mut children, Duration::from_millis(300))).unwrap();
        assert_eq!(
            children[0].status.and_then(|status| status.signal()),
            Some(9)
        );
    }

    #[test]
    fn reap_reports_each_exit_once() {
        let mut children = vec![child(1, "exit 3"), child(2, "exec sleep 30")];
        let deadline = Instant::now() + Duration::from_secs(10);
        let exited = loop {
            let exited: Vec<u64> = reap(&mut children)
                .unwrap()
                .iter()
                .map(|child| child.node.id)
                .collect();
            if !exited.is_empty() || Instant::now() > deadline {
                break exited;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(exited, [1]);
        assert_eq!(children[0].status.and_then(|status| status.code()), Some(3));
        assert!(reap(&mut children).unwrap().is_empty());
        block_on(stop(&mut children, Duration::from_secs(10))).unwrap();
        assert!(children[1].status.is_some());
    }
}
