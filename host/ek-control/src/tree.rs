//! Small async helpers over an in-process session: reads, idempotent creates, and the
//! conversion of a plugin's buffered ops into one multi.

use ek_jute::{OwnedResponse, Request};
use ek_plugin::{CreateMode, TxnOp};
use ek_server::{LocalError, LocalSession};
use ek_types::{Acl, ErrorCode, OpCode, Stat, WriteOp};
use std::time::Duration;

/// How long one in-process request may take before it counts as failed.
pub(crate) const REQUEST_WAIT: Duration = Duration::from_secs(10);

/// The node's data and stat, `None` when it does not exist.
pub(crate) async fn get(
    session: &LocalSession,
    path: &str,
) -> Result<Option<(Vec<u8>, Stat)>, LocalError> {
    let request = Request::GetData {
        path: path.to_owned(),
        watch: false,
    };
    match session.request(request, REQUEST_WAIT).await {
        Ok((_, OwnedResponse::GetData { data, stat })) => {
            Ok(Some((data.unwrap_or_default(), stat)))
        }
        Ok(_) => Err(LocalError::Code(ErrorCode::MarshallingError)),
        Err(LocalError::Code(ErrorCode::NoNode)) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The node's children, sorted; empty when it does not exist.
pub(crate) async fn children(
    session: &LocalSession,
    path: &str,
) -> Result<Vec<String>, LocalError> {
    let request = Request::GetChildren {
        path: path.to_owned(),
        watch: false,
    };
    match session.request(request, REQUEST_WAIT).await {
        Ok((_, OwnedResponse::GetChildren { children })) => {
            let mut children = children;
            children.sort();
            Ok(children)
        }
        Ok(_) => Err(LocalError::Code(ErrorCode::MarshallingError)),
        Err(LocalError::Code(ErrorCode::NoNode)) => Ok(Vec::new()),
        Err(err) => Err(err),
    }
}

fn create_op(path: &str, data: Vec<u8>, flags: i32) -> WriteOp {
    WriteOp::Create {
        opcode: OpCode::Create,
        path: path.to_owned(),
        data: Some(data),
        acl: Acl::open_unsafe(),
        flags,
        ttl_ms: 0,
    }
}

/// Creates `path` and any missing parents as empty persistent nodes; an existing node is
/// fine.
pub(crate) async fn ensure_path(session: &LocalSession, path: &str) -> Result<(), LocalError> {
    let mut at = String::new();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        at.push('/');
        at.push_str(part);
        let request = Request::Write(create_op(&at, Vec::new(), 0));
        match session.request(request, REQUEST_WAIT).await {
            Ok(_) | Err(LocalError::Code(ErrorCode::NodeExists)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Writes `data` at `path`: sets it when the node exists, creates it (with `flags`)
/// otherwise. Parents must exist.
pub(crate) async fn put(
    session: &LocalSession,
    path: &str,
    data: Vec<u8>,
    flags: i32,
) -> Result<(), LocalError> {
    let set = Request::Write(WriteOp::SetData {
        path: path.to_owned(),
        data: Some(data.clone()),
        version: -1,
    });
    match session.request(set, REQUEST_WAIT).await {
        Ok(_) => Ok(()),
        Err(LocalError::Code(ErrorCode::NoNode)) => {
            let create = Request::Write(create_op(path, data, flags));
            session.request(create, REQUEST_WAIT).await.map(|_| ())
        }
        Err(err) => Err(err),
    }
}

/// Deletes `path`; a missing node is fine.
pub(crate) async fn delete(session: &LocalSession, path: &str) -> Result<(), LocalError> {
    let request = Request::Write(WriteOp::Delete {
        path: path.to_owned(),
        version: -1,
    });
    match session.request(request, REQUEST_WAIT).await {
        Ok(_) | Err(LocalError::Code(ErrorCode::NoNode)) => Ok(()),
        Err(err) => Err(err),
    }
}

/// A plugin's buffered ops as the write ops of one multi (nodes it creates are open to
/// everyone, as ZooKeeper clients' default `OPEN_ACL_UNSAFE`).
pub(crate) fn multi_of(ops: &[TxnOp]) -> Vec<WriteOp> {
    ops.iter()
        .map(|op| match op {
            TxnOp::Create { path, data, mode } => {
                let flags = match mode {
                    CreateMode::Persistent => 0,
                    CreateMode::Ephemeral => 1,
                    CreateMode::PersistentSequential => 2,
                    CreateMode::EphemeralSequential => 3,
                };
                create_op(path, data.clone(), flags)
            }
            TxnOp::Set {
                path,
                data,
                version,
            } => WriteOp::SetData {
                path: path.clone(),
                data: Some(data.clone()),
                version: version.unwrap_or(-1),
            },
            TxnOp::Delete { path, version } => WriteOp::Delete {
                path: path.clone(),
                version: version.unwrap_or(-1),
            },
            TxnOp::Check { path, version } => WriteOp::Check {
                path: path.clone(),
                version: *version,
            },
        })
        .collect()
}

/// Submits a plugin's ops as one multi through the normal write path.
pub(crate) async fn submit(session: &LocalSession, ops: &[TxnOp]) -> Result<(), LocalError> {
    if ops.is_empty() {
        return Ok(());
    }
    session
        .request(Request::Multi(multi_of(ops)), REQUEST_WAIT)
        .await
        .map(|_| ())
}
