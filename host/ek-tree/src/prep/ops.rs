//! The rules of each write op, in ZooKeeper's order of checks (zk-wire §7, §8).

use super::{Caller, Pending, PrepContext, Scratch};
use crate::acl;
use ek_types::path::{parent, validate};
use ek_types::{
    perms, Acl, CreateMode, EphemeralKind, ErrorCode, OpCode, SessionId, TxnBody, WriteOp,
    CONTAINER_OWNER, TTL_MAX_MS,
};
use std::sync::Arc;

/// Nodes that can never be deleted (ZooKeeper's `isSpecialPath`).
const SPECIAL_PATHS: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// Preps one op against `scratch`, recording its effect there.
pub(super) fn prep_op(
    scratch: &mut Scratch<'_>,
    caller: &Caller<'_>,
    op: &WriteOp,
    ctx: &PrepContext,
) -> Result<TxnBody, ErrorCode> {
    match op {
        WriteOp::Create {
            opcode,
            path,
            data,
            acl,
            flags,
            ttl_ms,
        } => {
            let mode = create_mode(*opcode, *flags, *ttl_ms)?;
            let request = CreateRequest {
                mode,
                path,
                data: data.as_deref(),
                acl,
                ttl_ms: *ttl_ms,
            };
            create(scratch, caller, &request, ctx)
        }
        WriteOp::Delete { path, version } => delete(scratch, caller, path, *version),
        WriteOp::SetData {
            path,
            data,
            version,
        } => set_data(scratch, caller, path, data.as_deref(), *version, ctx),
        WriteOp::SetAcl { path, acl, version } => set_acl(scratch, caller, path, acl, *version),
        WriteOp::Check { path, version } => {
            valid_path(path)?;
            let node = scratch.get(path).ok_or(ErrorCode::NoNode)?;
            allow(&node, perms::READ, caller)?;
            next_version(node.version, *version)?;
            Ok(TxnBody::Check { path: path.clone() })
        }
    }
}

/// The create mode, checked against the opcode and TTL: containers only via
/// createContainer (which takes nothing else), TTL modes only via createTTL (which takes
/// nothing else) with `0 < ttl <= TTL_MAX_MS`.
pub(crate) fn create_mode(
    opcode: OpCode,
    flags: i32,
    ttl_ms: i64,
) -> Result<CreateMode, ErrorCode> {
    let is_create = matches!(
        opcode,
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl
    );
    let mode = CreateMode::from_flags(flags).filter(|_| is_create);
    let mode = mode.ok_or(ErrorCode::BadArguments)?;
    if (opcode == OpCode::CreateContainer) != (mode == CreateMode::Container) {
        return Err(ErrorCode::BadArguments);
    }
    let ttl_ok = ttl_ms > 0 && ttl_ms <= TTL_MAX_MS;
    if (opcode == OpCode::CreateTtl) != mode.is_ttl() || (mode.is_ttl() && !ttl_ok) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(mode)
}

struct CreateRequest<'a> {
    mode: CreateMode,
    path: &'a str,
    data: Option<&'a [u8]>,
    acl: &'a [Acl],
    ttl_ms: i64,
}

fn create(
    scratch: &mut Scratch<'_>,
    caller: &Caller<'_>,
    request: &CreateRequest<'_>,
    ctx: &PrepContext,
) -> Result<TxnBody, ErrorCode> {
    let CreateRequest { mode, path, .. } = *request;
    if mode.is_ephemeral() && caller.session_id == SessionId::NONE {
        return Err(ErrorCode::SessionExpired);
    }
    if request.data.map_or(0, <[u8]>::len) > ctx.max_data_bytes
        || !path.contains('/')
        || path.contains('\0')
    {
        return Err(ErrorCode::BadArguments);
    }
    let acl = acl::fixup(request.acl, caller.ids)?;
    let parent_path = parent(path);
    let mut parent_node = scratch.get(parent_path).ok_or(ErrorCode::NoNode)?;
    allow(&parent_node, perms::CREATE, caller)?;
    let path = if mode.is_sequential() {
        format!("{path}{:010}", parent_node.child_creates)
    } else {
        path.to_string()
    };
    valid_path(&path)?;
    if scratch.get(&path).is_some() {
        return Err(ErrorCode::NodeExists);
    }
    if let EphemeralKind::Session(_) = EphemeralKind::from_owner(parent_node.owner) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let owner = match mode {
        CreateMode::Container => CONTAINER_OWNER,
        _ if mode.is_ttl() => EphemeralKind::Ttl(request.ttl_ms).to_owner(),
        _ if mode.is_ephemeral() => caller.session_id.0,
        _ => 0,
    };
    parent_node.cversion = parent_node.cversion.wrapping_add(1);
    parent_node.child_creates = parent_node.child_creates.wrapping_add(1);
    parent_node.num_children += 1;
    scratch.set(parent_path, Some(parent_node));
    let acl_shared: Arc<[Acl]> = Arc::from(acl.as_slice());
    let node = Pending {
        version: 0,
        cversion: 0,
        aversion: 0,
        num_children: 0,
        child_creates: 0,
        owner,
        mtime: ctx.time_ms,
        acl: acl_shared,
    };
    scratch.set(&path, Some(node));
    Ok(TxnBody::Create {
        path,
        data: request.data.map(<[u8]>::to_vec),
        acl,
        ephemeral_owner: owner,
    })
}

fn delete(
    scratch: &mut Scratch<'_>,
    caller: &Caller<'_>,
    path: &str,
    version: i32,
) -> Result<TxnBody, ErrorCode> {
    valid_path(path)?;
    if SPECIAL_PATHS.contains(&path) {
        return Err(ErrorCode::BadArguments);
    }
    let parent_node = scratch.get(parent(path)).ok_or(ErrorCode::NoNode)?;
    allow(&parent_node, perms::DELETE, caller)?;
    let node = scratch.get(path).ok_or(ErrorCode::NoNode)?;
    next_version(node.version, version)?;
    if node.num_children > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    scratch.remove(path);
    Ok(TxnBody::Delete {
        path: path.to_string(),
    })
}

fn set_data(
    scratch: &mut Scratch<'_>,
    caller: &Caller<'_>,
    path: &str,
    data: Option<&[u8]>,
    version: i32,
    ctx: &PrepContext,
) -> Result<TxnBody, ErrorCode> {
    valid_path(path)?;
    if data.map_or(0, <[u8]>::len) > ctx.max_data_bytes {
        return Err(ErrorCode::BadArguments);
    }
    let mut node = scratch.get(path).ok_or(ErrorCode::NoNode)?;
    allow(&node, perms::WRITE, caller)?;
    let version = next_version(node.version, version)?;
    node.version = version;
    node.mtime = ctx.time_ms;
    scratch.set(path, Some(node));
    Ok(TxnBody::SetData {
        path: path.to_string(),
        data: data.map(<[u8]>::to_vec),
        version,
    })
}

fn set_acl(
    scratch: &mut Scratch<'_>,
    caller: &Caller<'_>,
    path: &str,
    acl: &[Acl],
    version: i32,
) -> Result<TxnBody, ErrorCode> {
    valid_path(path)?;
    let acl = acl::fixup(acl, caller.ids)?;
    let mut node = scratch.get(path).ok_or(ErrorCode::NoNode)?;
    allow(&node, perms::ADMIN, caller)?;
    let version = next_version(node.aversion, version)?;
    node.aversion = version;
    node.acl = Arc::from(acl.as_slice());
    scratch.set(path, Some(node));
    Ok(TxnBody::SetAcl {
        path: path.to_string(),
        acl,
        version,
    })
}

fn valid_path(path: &str) -> Result<(), ErrorCode> {
    validate(path).map_err(|_| ErrorCode::BadArguments)
}

fn allow(node: &Pending, perm: i32, caller: &Caller<'_>) -> Result<(), ErrorCode> {
    if acl::check(&node.acl, perm, caller.ids) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// ZooKeeper's `checkAndIncVersion`: `-1` matches any version; the next version skips
/// `-1` when the counter wraps (ZOOKEEPER-4743).
pub(crate) fn next_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    match current.wrapping_add(1) {
        -1 => Ok(0),
        next => Ok(next),
    }
}
