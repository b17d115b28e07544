//! Processes: signals through `sh`'s `kill` (this crate forbids `unsafe`, so no libc), and
//! caller-given shell commands.

use std::process::{Command, Stdio};

/// A signal the bench sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGTERM: ask the server to stop.
    Term,
    /// SIGKILL: `kill -9`, no clean shutdown.
    Kill,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
        }
    }
}

/// Whom a signal goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// One process.
    Pid(u32),
    /// Every process of a process group (a launched server and its children).
    Group(u32),
}

/// Sends `signal` to `target` with `kill -s SIG -- PID` (a negative PID names a group).
pub(crate) fn send_signal(target: Target, signal: Signal) -> Result<(), String> {
    let pid = match target {
        Target::Pid(pid) => pid.to_string(),
        Target::Group(pgid) => format!("-{pgid}"),
    };
    let script = format!("kill -s {} -- {pid}", signal.name());
    run_shell(&script)
}

/// Runs `script` with `sh -c` and waits for it; an exit status other than 0 is an error
/// that carries the command's stderr.
pub(crate) fn run_shell(script: &str) -> Result<(), String> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|error| format!("cannot run `{script}`: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{script}` exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
