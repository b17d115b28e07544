//! Client → server: the ConnectRequest and every request opcode.

use crate::jute::{
    put_acls, put_bool, put_buffer, put_buffer_opt, put_frame, put_strings, put_ustring, Reader,
};
use crate::{BodyError, DecodeError, FrameBuf};
use bytes::BufMut;
use ek_types::{OpCode, SessionId, WriteOp, Zxid};

/// The first frame of a connection (no request header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// The highest zxid the client has seen.
    pub last_zxid_seen: Zxid,
    /// The requested session timeout.
    pub timeout_ms: i32,
    /// 0 for a new session, else the session to reattach.
    pub session_id: SessionId,
    /// The session password (16 bytes; zeros for a new session). Null decodes as empty.
    pub passwd: Vec<u8>,
    /// Whether the client accepts a read-only server; `None` when the client is too old to
    /// send the field, in which case the response must not carry it either.
    pub read_only: Option<bool>,
}

/// One op of a multiRead (opcode 22). Watch flags on the wire are ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadOp {
    /// getChildren (8).
    GetChildren {
        /// Node to list.
        path: String,
    },
    /// getData (4).
    GetData {
        /// Node to read.
        path: String,
    },
}

/// A decoded request body: one variant per client opcode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// ping (11), sent with xid -2.
    Ping,
    /// auth (100), sent with xid -4.
    Auth {
        /// `AuthPacket.type`, always 0.
        auth_type: i32,
        /// Scheme, e.g. `digest`.
        scheme: String,
        /// Credentials, e.g. `user:password`.
        auth: Vec<u8>,
    },
    /// setWatches (101) or setWatches2 (105), sent with xid -8. setWatches carries no
    /// persistent lists; they decode empty.
    SetWatches {
        /// The client's last seen zxid.
        relative_zxid: Zxid,
        /// Data watches.
        data: Vec<String>,
        /// Exist watches.
        exist: Vec<String>,
        /// Child watches.
        child: Vec<String>,
        /// Persistent watches (105 only).
        persistent: Vec<String>,
        /// Persistent recursive watches (105 only).
        persistent_recursive: Vec<String>,
    },
    /// create (1), create2 (15), createContainer (19), createTTL (21), delete (2),
    /// setData (5), setACL (7) or a standalone check (13).
    Write(WriteOp),
    /// multi (14): write ops applied atomically.
    Multi(Vec<WriteOp>),
    /// multiRead (22): independent reads.
    MultiRead(Vec<ReadOp>),
    /// exists (3).
    Exists {
        /// Node to stat.
        path: String,
        /// Leave a data (or exist) watch.
        watch: bool,
    },
    /// getData (4).
    GetData {
        /// Node to read.
        path: String,
        /// Leave a data watch.
        watch: bool,
    },
    /// getACL (6).
    GetAcl {
        /// Node to read.
        path: String,
    },
    /// getChildren (8).
    GetChildren {
        /// Node to list.
        path: String,
        /// Leave a child watch.
        watch: bool,
    },
    /// getChildren2 (12): children plus the node's stat.
    GetChildren2 {
        /// Node to list.
        path: String,
        /// Leave a child watch.
        watch: bool,
    },
    /// sync (9).
    Sync {
        /// Path to echo back.
        path: String,
    },
    /// checkWatches (17).
    CheckWatches {
        /// Watched path.
        path: String,
        /// WatcherType: Children 1, Data 2, Any 3, Persistent 4, PersistentRecursive 5.
        watcher_type: i32,
    },
    /// removeWatches (18).
    RemoveWatches {
        /// Watched path.
        path: String,
        /// WatcherType, as for checkWatches.
        watcher_type: i32,
    },
    /// getEphemerals (103).
    GetEphemerals {
        /// Path prefix of the session's ephemerals to list.
        prefix: String,
    },
    /// getAllChildrenNumber (104).
    GetAllChildrenNumber {
        /// Node whose descendants are counted.
        path: String,
    },
    /// addWatch (106).
    AddWatch {
        /// Path to watch.
        path: String,
        /// PERSISTENT 0, PERSISTENT_RECURSIVE 1 (validated by the server).
        mode: i32,
    },
    /// whoAmI (107).
    WhoAmI,
    /// closeSession (-11).
    CloseSession,
    /// reconfig (16).
    Reconfig {
        /// Servers to add.
        joining: String,
        /// Servers to remove.
        leaving: String,
        /// A complete new membership.
        new_members: String,
        /// Expected current config version, -1 for any.
        cur_config_id: i64,
    },
    /// sasl (102).
    Sasl {
        /// SASL token.
        token: Vec<u8>,
    },
}

impl Request {
    /// The opcode this request is sent with. SetWatches uses setWatches2 (105) only when it
    /// has persistent watches.
    pub fn opcode(&self) -> OpCode {
        match self {
            Request::Ping => OpCode::Ping,
            Request::Auth { .. } => OpCode::Auth,
            Request::SetWatches {
                persistent,
                persistent_recursive,
                ..
            } => {
                if persistent.is_empty() && persistent_recursive.is_empty() {
                    OpCode::SetWatches
                } else {
                    OpCode::SetWatches2
                }
            }
            Request::Write(op) => op.opcode(),
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Exists { .. } => OpCode::Exists,
            Request::GetData { .. } => OpCode::GetData,
            Request::GetAcl { .. } => OpCode::GetAcl,
            Request::GetChildren { .. } => OpCode::GetChildren,
            Request::GetChildren2 { .. } => OpCode::GetChildren2,
            Request::Sync { .. } => OpCode::Sync,
            Request::CheckWatches { .. } => OpCode::CheckWatches,
            Request::RemoveWatches { .. } => OpCode::RemoveWatches,
            Request::GetEphemerals { .. } => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber { .. } => OpCode::GetAllChildrenNumber,
            Request::AddWatch { .. } => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
            Request::Reconfig { .. } => OpCode::Reconfig,
            Request::Sasl { .. } => OpCode::Sasl,
        }
    }
}

/// A request frame whose header was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedRequest {
    /// The client's xid, echoed in the reply.
    pub xid: i32,
    /// The raw opcode from the header.
    pub opcode: i32,
    /// The body, or why it could not be decoded (answer with [`BodyError::error_code`]).
    pub body: Result<Request, BodyError>,
}

/// Decodes a ConnectRequest payload. `readOnly` is read when at least one byte follows the
/// password; further trailing bytes are ignored.
pub fn decode_connect_request(payload: &[u8]) -> Result<ConnectRequest, DecodeError> {
    let mut reader = Reader::new(payload);
    Ok(ConnectRequest {
        protocol_version: reader.i32()?,
        last_zxid_seen: reader.zxid()?,
        timeout_ms: reader.i32()?,
        session_id: SessionId(reader.i64()?),
        passwd: reader.buffer()?,
        read_only: optional_bool(&mut reader)?,
    })
}

pub(crate) fn optional_bool(reader: &mut Reader<'_>) -> Result<Option<bool>, DecodeError> {
    if reader.remaining() == 0 {
        return Ok(None);
    }
    reader.bool().map(Some)
}

/// Appends a ConnectRequest frame (client side); returns the payload length.
pub fn encode_connect_request(out: &mut impl FrameBuf, request: &ConnectRequest) -> usize {
    put_frame(out, |out| {
        out.put_i32(request.protocol_version);
        out.put_i64(request.last_zxid_seen.0);
        out.put_i32(request.timeout_ms);
        out.put_i64(request.session_id.0);
        put_buffer(out, &request.passwd);
        if let Some(read_only) = request.read_only {
            put_bool(out, read_only);
        }
    })
}

/// Decodes a request payload (after the ConnectRequest). An unreadable 8-byte header is an
/// error (close the connection); a bad body is reported in [`DecodedRequest::body`] so the
/// server can answer it. Bytes after a complete body are ignored, as ZooKeeper does.
pub fn decode_request(payload: &[u8]) -> Result<DecodedRequest, DecodeError> {
    let mut reader = Reader::new(payload);
    let xid = reader.i32()?;
    let opcode = reader.i32()?;
    let body = match OpCode::from_code(opcode) {
        Some(op) => decode_body(op, &mut reader),
        None => Err(BodyError::UnknownOpcode),
    };
    Ok(DecodedRequest { xid, opcode, body })
}

fn decode_body(op: OpCode, r: &mut Reader<'_>) -> Result<Request, BodyError> {
    let request = match op {
        OpCode::Ping => Request::Ping,
        OpCode::WhoAmI => Request::WhoAmI,
        OpCode::CloseSession => Request::CloseSession,
        OpCode::Auth => Request::Auth {
            auth_type: r.i32()?,
            scheme: r.ustring()?,
            auth: r.buffer()?,
        },
        OpCode::SetWatches | OpCode::SetWatches2 => decode_set_watches(op, r)?,
        OpCode::Create
        | OpCode::Create2
        | OpCode::CreateContainer
        | OpCode::CreateTtl
        | OpCode::Delete
        | OpCode::SetData
        | OpCode::SetAcl
        | OpCode::Check => Request::Write(decode_write_op(op, r)?),
        OpCode::Multi => Request::Multi(decode_multi(r)?),
        OpCode::MultiRead => Request::MultiRead(decode_multi_read(r)?),
        OpCode::Exists => Request::Exists {
            path: r.ustring()?,
            watch: r.bool()?,
        },
        OpCode::GetData => Request::GetData {
            path: r.ustring()?,
            watch: r.bool()?,
        },
        OpCode::GetAcl => Request::GetAcl { path: r.ustring()? },
        OpCode::GetChildren => Request::GetChildren {
            path: r.ustring()?,
            watch: r.bool()?,
        },
        OpCode::GetChildren2 => Request::GetChildren2 {
            path: r.ustring()?,
            watch: r.bool()?,
        },
        OpCode::Sync => Request::Sync { path: r.ustring()? },
        _ => decode_session_body(op, r)?,
    };
    Ok(request)
}

/// The opcodes used rarely: watch management, session queries, reconfig and SASL.
fn decode_session_body(op: OpCode, r: &mut Reader<'_>) -> Result<Request, BodyError> {
    let request = match op {
        OpCode::CheckWatches => Request::CheckWatches {
            path: r.ustring()?,
            watcher_type: r.i32()?,
        },
        OpCode::RemoveWatches => Request::RemoveWatches {
            path: r.ustring()?,
            watcher_type: r.i32()?,
        },
        OpCode::GetEphemerals => Request::GetEphemerals {
            prefix: r.ustring()?,
        },
        OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber { path: r.ustring()? },
        OpCode::AddWatch => Request::AddWatch {
            path: r.ustring()?,
            mode: r.i32()?,
        },
        OpCode::Reconfig => Request::Reconfig {
            joining: r.ustring()?,
            leaving: r.ustring()?,
            new_members: r.ustring()?,
            cur_config_id: r.i64()?,
        },
        OpCode::Sasl => Request::Sasl { token: r.buffer()? },
        // Server-internal opcodes (notification, createSession, deleteContainer, error)
        // are not client requests.
        _ => return Err(BodyError::UnknownOpcode),
    };
    Ok(request)
}

fn decode_set_watches(op: OpCode, r: &mut Reader<'_>) -> Result<Request, DecodeError> {
    let relative_zxid = r.zxid()?;
    let data = r.strings()?;
    let exist = r.strings()?;
    let child = r.strings()?;
    let (persistent, persistent_recursive) = if op == OpCode::SetWatches2 {
        (r.strings()?, r.strings()?)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Request::SetWatches {
        relative_zxid,
        data,
        exist,
        child,
        persistent,
        persistent_recursive,
    })
}

/// Decodes the record of a write opcode. `op` must be one of the eight write opcodes.
fn decode_write_op(op: OpCode, r: &mut Reader<'_>) -> Result<WriteOp, DecodeError> {
    Ok(match op {
        OpCode::Delete => WriteOp::Delete {
            path: r.ustring()?,
            version: r.i32()?,
        },
        OpCode::SetData => WriteOp::SetData {
            path: r.ustring()?,
            data: r.buffer_opt()?,
            version: r.i32()?,
        },
        OpCode::SetAcl => WriteOp::SetAcl {
            path: r.ustring()?,
            acl: r.acls()?,
            version: r.i32()?,
        },
        OpCode::Check => WriteOp::Check {
            path: r.ustring()?,
            version: r.i32()?,
        },
        // create (1), create2 (15), createContainer (19), createTTL (21).
        _ => WriteOp::Create {
            opcode: op,
            path: r.ustring()?,
            data: r.buffer_opt()?,
            acl: r.acls()?,
            flags: r.i32()?,
            ttl_ms: if op == OpCode::CreateTtl { r.i64()? } else { 0 },
        },
    })
}

/// Reads `MultiHeader` + record pairs until a header says `done` (multi requests and
/// multi responses share this layout); `op` reads the record after each header.
pub(crate) fn decode_multi_ops<T>(
    r: &mut Reader<'_>,
    mut op: impl FnMut(i32, &mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let op_type = r.i32()?;
        let done = r.bool()?;
        let _err = r.i32()?;
        if done {
            return Ok(ops);
        }
        ops.push(op(op_type, r)?);
    }
}

fn decode_multi(r: &mut Reader<'_>) -> Result<Vec<WriteOp>, DecodeError> {
    decode_multi_ops(r, |op_type, r| match OpCode::from_code(op_type) {
        Some(
            op @ (OpCode::Create
            | OpCode::Create2
            | OpCode::CreateContainer
            | OpCode::CreateTtl
            | OpCode::Delete
            | OpCode::SetData
            | OpCode::Check),
        ) => decode_write_op(op, r),
        _ => Err(DecodeError::DisallowedMultiOp(op_type)),
    })
}

fn decode_multi_read(r: &mut Reader<'_>) -> Result<Vec<ReadOp>, DecodeError> {
    decode_multi_ops(r, |op_type, r| match OpCode::from_code(op_type) {
        Some(OpCode::GetChildren) => {
            let path = r.ustring()?;
            r.bool()?;
            Ok(ReadOp::GetChildren { path })
        }
        Some(OpCode::GetData) => {
            let path = r.ustring()?;
            r.bool()?;
            Ok(ReadOp::GetData { path })
        }
        _ => Err(DecodeError::DisallowedMultiOp(op_type)),
    })
}

/// Appends a request frame (client side): RequestHeader{xid, opcode} and the record.
/// The caller picks the xid (-2 for ping, -4 for auth, -8 for setWatches). Returns the
/// payload length.
pub fn encode_request(out: &mut impl FrameBuf, xid: i32, request: &Request) -> usize {
    put_frame(out, |out| {
        out.put_i32(xid);
        out.put_i32(wire_opcode(request));
        put_request_body(out, request);
    })
}

/// The opcode written in the header; a create carrying a non-create opcode goes as create.
fn wire_opcode(request: &Request) -> i32 {
    match request {
        Request::Write(op) => write_op_code(op).code(),
        _ => request.opcode().code(),
    }
}

fn write_op_code(op: &WriteOp) -> OpCode {
    match op {
        WriteOp::Create { opcode, .. } => match opcode {
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => *opcode,
            _ => OpCode::Create,
        },
        _ => op.opcode(),
    }
}

fn put_request_body(out: &mut impl BufMut, request: &Request) {
    match request {
        Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        Request::Auth {
            auth_type,
            scheme,
            auth,
        } => {
            out.put_i32(*auth_type);
            put_ustring(out, scheme);
            put_buffer(out, auth);
        }
        Request::SetWatches { .. } => put_set_watches(out, request),
        Request::Write(op) => put_write_op(out, op),
        Request::Multi(ops) => {
            for op in ops {
                put_multi_header(out, write_op_code(op).code(), false, -1);
                put_write_op(out, op);
            }
            put_multi_header(out, -1, true, -1);
        }
        Request::MultiRead(ops) => {
            for op in ops {
                let (opcode, path) = match op {
                    ReadOp::GetChildren { path } => (OpCode::GetChildren, path),
                    ReadOp::GetData { path } => (OpCode::GetData, path),
                };
                put_multi_header(out, opcode.code(), false, -1);
                put_ustring(out, path);
                put_bool(out, false);
            }
            put_multi_header(out, -1, true, -1);
        }
        Request::Exists { path, watch }
        | Request::GetData { path, watch }
        | Request::GetChildren { path, watch }
        | Request::GetChildren2 { path, watch } => {
            put_ustring(out, path);
            put_bool(out, *watch);
        }
        Request::GetAcl { path }
        | Request::Sync { path }
        | Request::GetAllChildrenNumber { path }
        | Request::GetEphemerals { prefix: path } => put_ustring(out, path),
        Request::CheckWatches { path, watcher_type }
        | Request::RemoveWatches { path, watcher_type }
        | Request::AddWatch {
            path,
            mode: watcher_type,
        } => {
            put_ustring(out, path);
            out.put_i32(*watcher_type);
        }
        Request::Reconfig {
            joining,
            leaving,
            new_members,
            cur_config_id,
        } => {
            put_ustring(out, joining);
            put_ustring(out, leaving);
            put_ustring(out, new_members);
            out.put_i64(*cur_config_id);
        }
        Request::Sasl { token } => put_buffer(out, token),
    }
}

fn put_set_watches(out: &mut impl BufMut, request: &Request) {
    if let Request::SetWatches {
        relative_zxid,
        data,
        exist,
        child,
        persistent,
        persistent_recursive,
    } = request
    {
        out.put_i64(relative_zxid.0);
        put_strings(out, data);
        put_strings(out, exist);
        put_strings(out, child);
        if request.opcode() == OpCode::SetWatches2 {
            put_strings(out, persistent);
            put_strings(out, persistent_recursive);
        }
    }
}

pub(crate) fn put_multi_header(out: &mut impl BufMut, op_type: i32, done: bool, err: i32) {
    out.put_i32(op_type);
    put_bool(out, done);
    out.put_i32(err);
}

fn put_write_op(out: &mut impl BufMut, op: &WriteOp) {
    match op {
        WriteOp::Create {
            opcode,
            path,
            data,
            acl,
            flags,
            ttl_ms,
        } => {
            put_ustring(out, path);
            put_buffer_opt(out, data.as_deref());
            put_acls(out, acl);
            out.put_i32(*flags);
            if *opcode == OpCode::CreateTtl {
                out.put_i64(*ttl_ms);
            }
        }
        WriteOp::Delete { path, version } | WriteOp::Check { path, version } => {
            put_ustring(out, path);
            out.put_i32(*version);
        }
        WriteOp::SetData {
            path,
            data,
            version,
        } => {
            put_ustring(out, path);
            put_buffer_opt(out, data.as_deref());
            out.put_i32(*version);
        }
        WriteOp::SetAcl { path, acl, version } => {
            put_ustring(out, path);
            put_acls(out, acl);
            out.put_i32(*version);
        }
    }
}
