//! Setup and cleanup of the bench's znodes: pipelined creates and deletes on one
//! connection, where "already there" (create) and "already gone" (delete) are fine.

use std::collections::HashMap;
use std::time::Duration;

use ek_jute::Request;
use ek_types::{Acl, ErrorCode, OpCode, WriteOp};
use tokio::time::timeout;

use crate::conn::Conn;
use crate::BenchError;

/// Requests in flight during setup and cleanup.
const PIPELINE_DEPTH: usize = 64;

/// The root of all bench trees; each run lives in `/ekbench/<run id>`.
pub(crate) const BENCH_ROOT: &str = "/ekbench";

/// A create of a persistent node with `data`, open ACL.
pub(crate) fn create_op(path: String, data: Vec<u8>) -> WriteOp {
    WriteOp::Create {
        opcode: OpCode::Create,
        path,
        data: Some(data),
        acl: Acl::open_unsafe(),
        flags: 0,
        ttl_ms: 0,
    }
}

/// A delete of `path`, any version.
pub(crate) fn delete_op(path: String) -> WriteOp {
    WriteOp::Delete { path, version: -1 }
}

/// The API name of a write op, for error messages.
fn op_name(op: &WriteOp) -> &'static str {
    match op {
        WriteOp::Create { .. } => "create",
        WriteOp::Delete { .. } => "delete",
        WriteOp::SetData { .. } => "setData",
        WriteOp::SetAcl { .. } => "setACL",
        WriteOp::Check { .. } => "check",
    }
}

/// Sends `ops` with up to [`PIPELINE_DEPTH`] in flight and waits for every reply. An
/// error code other than Ok or one in `accepted` fails the whole call.
pub(crate) async fn run_writes(
    conn: &mut Conn,
    ops: impl IntoIterator<Item = WriteOp>,
    accepted: &[ErrorCode],
    wait: Duration,
) -> Result<(), BenchError> {
    let mut ops = ops.into_iter();
    // xid -> (op name, path), for the error message.
    let mut in_flight: HashMap<i32, (&'static str, String)> = HashMap::new();
    loop {
        while in_flight.len() < PIPELINE_DEPTH {
            let Some(op) = ops.next() else { break };
            let name = op_name(&op);
            let path = op.path().to_owned();
            let xid = conn.queue(&Request::Write(op));
            in_flight.insert(xid, (name, path));
        }
        if in_flight.is_empty() {
            return Ok(());
        }
        conn.flush().await?;
        let reply = timeout(wait, conn.next_reply())
            .await
            .map_err(|_| BenchError::Timeout {
                addr: conn.addr().to_owned(),
                what: "a setup or cleanup request".to_owned(),
                timeout: wait,
            })??;
        let Some((name, path)) = in_flight.remove(&reply.header.xid) else {
            continue;
        };
        check_code(name, path, reply.header.err, accepted)?;
    }
}

/// Ok when `code` is 0 or accepted, else the error naming the op and its path.
pub(crate) fn check_code(
    op: &'static str,
    path: String,
    code: i32,
    accepted: &[ErrorCode],
) -> Result<(), BenchError> {
    if code == 0 {
        return Ok(());
    }
    match ErrorCode::from_code(code) {
        Some(known) if accepted.contains(&known) => Ok(()),
        Some(known) => Err(BenchError::Request {
            op,
            path,
            code: known,
        }),
        None => Err(BenchError::UnknownErrorCode { op, path, code }),
    }
}

/// Creates `/ekbench`, then `root` and each of `children` (full paths, empty data), in
/// that order; existing nodes are fine.
pub(crate) async fn create_dirs(
    conn: &mut Conn,
    root: &str,
    children: &[String],
    wait: Duration,
) -> Result<(), BenchError> {
    for path in [BENCH_ROOT, root] {
        run_writes(
            conn,
            [create_op(path.to_owned(), Vec::new())],
            &[ErrorCode::NodeExists],
            wait,
        )
        .await?;
    }
    let ops = children
        .iter()
        .map(|path| create_op(path.clone(), Vec::new()));
    run_writes(conn, ops, &[ErrorCode::NodeExists], wait).await
}

/// Deletes `paths` (leaves first: the caller orders them), then `/ekbench` if it is now
/// empty. Missing nodes are fine; a `/ekbench` still holding other runs stays.
pub(crate) async fn delete_all(
    conn: &mut Conn,
    paths: impl IntoIterator<Item = String>,
    wait: Duration,
) -> Result<(), BenchError> {
    run_writes(
        conn,
        paths.into_iter().map(delete_op),
        &[ErrorCode::NoNode],
        wait,
    )
    .await?;
    run_writes(
        conn,
        [delete_op(BENCH_ROOT.to_owned())],
        &[ErrorCode::NoNode, ErrorCode::NotEmpty],
        wait,
    )
    .await
}

/// A run id unique enough to share a server with other runs: seconds since the epoch and
/// the process id, e.g. `1767225600-4242`.
pub(crate) fn default_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    format!("{secs}-{}", std::process::id())
}

/// Checks a `--run-id`: it becomes one path component.
pub(crate) fn check_run_id(run_id: &str) -> Result<(), BenchError> {
    let ok = !run_id.is_empty()
        && run_id != "."
        && run_id != ".."
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BenchError::InvalidArgs(format!(
            "--run-id '{run_id}': use letters, digits, '-', '_' and '.' only"
        )))
    }
}
