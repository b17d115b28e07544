//! Server → client: the ConnectResponse, replies and watch notifications.

use crate::jute::{
    put_acls, put_bool, put_buffer, put_buffer_opt, put_client_infos, put_frame, put_stat,
    put_strings, put_ustring, Reader,
};
use crate::request::{decode_multi_ops, optional_bool, put_multi_header};
use crate::{DecodeError, FrameBuf};
use bytes::BufMut;
use ek_types::{Acl, ErrorCode, EventType, OpCode, OpResult, SessionId, Stat, Zxid};

/// The answer to a ConnectRequest (no reply header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// The negotiated session timeout; 0 tells the client its session expired.
    pub timeout_ms: i32,
    /// The session id (0 when expired).
    pub session_id: SessionId,
    /// The session password (16 bytes).
    pub passwd: Vec<u8>,
    /// Whether this server is read-only; written only when `Some`, which must be exactly
    /// when the ConnectRequest carried the field.
    pub read_only: Option<bool>,
}

/// `ReplyHeader`: the start of every reply and notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyHeader {
    /// The request's xid; -1 for a notification, -2 for a ping.
    pub xid: i32,
    /// The server's last processed zxid (the txn's zxid for a notification).
    pub zxid: Zxid,
    /// 0 or a ZooKeeper error code, kept raw so unknown codes survive.
    pub err: i32,
}

impl ReplyHeader {
    /// The error code, if ZooKeeper defines it.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::from_code(self.err)
    }
}

/// `ClientInfo`, one identity of a connection as whoAmI reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientInfo {
    /// Scheme, e.g. `ip` or `digest`.
    pub auth_scheme: String,
    /// Identity within the scheme, e.g. `127.0.0.1` or a digest user name.
    pub user: String,
}

/// The result of one op of a multiRead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadResult {
    /// getChildren succeeded.
    GetChildren {
        /// Child names.
        children: Vec<String>,
    },
    /// getData succeeded.
    GetData {
        /// Node data; `None` is null (wire length -1).
        data: Option<Vec<u8>>,
        /// Node stat.
        stat: Stat,
    },
    /// The op failed with this code.
    Error(ErrorCode),
}

/// `WatcherEvent`: the body of a notification (xid -1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatcherEvent {
    /// What happened.
    pub event_type: EventType,
    /// Keeper state; the server only sends SyncConnected (3).
    pub state: i32,
    /// The absolute server-side path.
    pub path: String,
}

/// A reply body to encode, borrowing its data so that large replies (getData) are copied
/// only once, straight into the output buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    /// No record: delete, ping, auth, setWatches, check/removeWatches, closeSession, and
    /// every error reply.
    Empty,
    /// CreateResponse: the answer to create (1).
    Create {
        /// Actual path, with any sequence suffix.
        path: &'a str,
    },
    /// Create2Response: create2, createContainer, createTTL.
    Create2 {
        /// Actual path.
        path: &'a str,
        /// Stat of the new node.
        stat: Stat,
    },
    /// A bare Stat: exists, setData, setACL (and a standalone check, as Java does).
    Stat(Stat),
    /// GetDataResponse: getData and reconfig.
    GetData {
        /// Node data; `None` is null (wire length -1).
        data: Option<&'a [u8]>,
        /// Node stat.
        stat: Stat,
    },
    /// GetACLResponse.
    GetAcl {
        /// The node's ACL.
        acl: &'a [Acl],
        /// Node stat.
        stat: Stat,
    },
    /// GetChildrenResponse.
    GetChildren {
        /// Child names.
        children: &'a [String],
    },
    /// GetChildren2Response.
    GetChildren2 {
        /// Child names.
        children: &'a [String],
        /// Node stat.
        stat: Stat,
    },
    /// SyncResponse.
    Sync {
        /// The path as the client sent it.
        path: &'a str,
    },
    /// MultiResponse of a multi (14).
    Multi(&'a [OpResult]),
    /// MultiResponse of a multiRead (22).
    MultiRead(&'a [ReadResult]),
    /// GetEphemeralsResponse.
    GetEphemerals(&'a [String]),
    /// GetAllChildrenNumberResponse.
    GetAllChildrenNumber(i32),
    /// WhoAmIResponse.
    WhoAmI(&'a [ClientInfo]),
    /// addWatch's `ErrorResponse{0}`.
    AddWatch,
    /// SetSASLResponse.
    Sasl {
        /// SASL token; `None` is null (wire length -1), as ZooKeeper answers without SASL.
        token: Option<&'a [u8]>,
    },
}

/// A decoded reply body (client side): [`Response`] with owned data, plus notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedResponse {
    /// No record.
    Empty,
    /// CreateResponse.
    Create {
        /// Actual path.
        path: String,
    },
    /// Create2Response.
    Create2 {
        /// Actual path.
        path: String,
        /// Stat of the new node.
        stat: Stat,
    },
    /// A bare Stat.
    Stat(Stat),
    /// GetDataResponse.
    GetData {
        /// Node data; `None` is null (wire length -1).
        data: Option<Vec<u8>>,
        /// Node stat.
        stat: Stat,
    },
    /// GetACLResponse.
    GetAcl {
        /// The node's ACL.
        acl: Vec<Acl>,
        /// Node stat.
        stat: Stat,
    },
    /// GetChildrenResponse.
    GetChildren {
        /// Child names.
        children: Vec<String>,
    },
    /// GetChildren2Response.
    GetChildren2 {
        /// Child names.
        children: Vec<String>,
        /// Node stat.
        stat: Stat,
    },
    /// SyncResponse.
    Sync {
        /// Echoed path.
        path: String,
    },
    /// MultiResponse of a multi. A create result of type 1 carries a default stat (the
    /// wire has none) and create opcode 1; type 15 decodes as create2.
    Multi(Vec<OpResult>),
    /// MultiResponse of a multiRead.
    MultiRead(Vec<ReadResult>),
    /// GetEphemeralsResponse.
    GetEphemerals(Vec<String>),
    /// GetAllChildrenNumberResponse.
    GetAllChildrenNumber(i32),
    /// WhoAmIResponse.
    WhoAmI(Vec<ClientInfo>),
    /// addWatch's ErrorResponse.
    AddWatch,
    /// SetSASLResponse.
    Sasl {
        /// SASL token; `None` is null (wire length -1).
        token: Option<Vec<u8>>,
    },
    /// A watch notification (reply xid -1), whatever opcode was passed.
    Notification(WatcherEvent),
}

impl OwnedResponse {
    /// Borrows this as a [`Response`] for encoding; `None` for a notification, which is
    /// encoded with [`encode_notification`].
    pub fn as_response(&self) -> Option<Response<'_>> {
        Some(match self {
            OwnedResponse::Empty => Response::Empty,
            OwnedResponse::Create { path } => Response::Create { path },
            OwnedResponse::Create2 { path, stat } => Response::Create2 { path, stat: *stat },
            OwnedResponse::Stat(stat) => Response::Stat(*stat),
            OwnedResponse::GetData { data, stat } => Response::GetData {
                data: data.as_deref(),
                stat: *stat,
            },
            OwnedResponse::GetAcl { acl, stat } => Response::GetAcl { acl, stat: *stat },
            OwnedResponse::GetChildren { children } => Response::GetChildren { children },
            OwnedResponse::GetChildren2 { children, stat } => Response::GetChildren2 {
                children,
                stat: *stat,
            },
            OwnedResponse::Sync { path } => Response::Sync { path },
            OwnedResponse::Multi(results) => Response::Multi(results),
            OwnedResponse::MultiRead(results) => Response::MultiRead(results),
            OwnedResponse::GetEphemerals(paths) => Response::GetEphemerals(paths),
            OwnedResponse::GetAllChildrenNumber(n) => Response::GetAllChildrenNumber(*n),
            OwnedResponse::WhoAmI(infos) => Response::WhoAmI(infos),
            OwnedResponse::AddWatch => Response::AddWatch,
            OwnedResponse::Sasl { token } => Response::Sasl {
                token: token.as_deref(),
            },
            OwnedResponse::Notification(_) => return None,
        })
    }
}

/// Appends a ConnectResponse frame; returns the payload length.
pub fn encode_connect_response(out: &mut impl FrameBuf, response: &ConnectResponse) -> usize {
    put_frame(out, |out| {
        out.put_i32(response.protocol_version);
        out.put_i32(response.timeout_ms);
        out.put_i64(response.session_id.0);
        put_buffer(out, &response.passwd);
        if let Some(read_only) = response.read_only {
            put_bool(out, read_only);
        }
    })
}

/// Decodes a ConnectResponse payload (client side); `readOnly` is optional.
pub fn decode_connect_response(payload: &[u8]) -> Result<ConnectResponse, DecodeError> {
    let mut reader = Reader::new(payload);
    Ok(ConnectResponse {
        protocol_version: reader.i32()?,
        timeout_ms: reader.i32()?,
        session_id: SessionId(reader.i64()?),
        passwd: reader.buffer()?,
        read_only: optional_bool(&mut reader)?,
    })
}

/// Appends a reply frame: `ReplyHeader{xid, zxid, err}`, then `body` only when `err` is
/// Ok (clients do not read a body on error). A ping reply is
/// `encode_reply(out, -2, zxid, ErrorCode::Ok, &Response::Empty)`. Returns the payload
/// length: keep it under the client's maximum (`jute.maxbuffer`, by default
/// [`crate::DEFAULT_MAX_FRAME_BYTES`]) or the client drops the connection.
pub fn encode_reply(
    out: &mut impl FrameBuf,
    xid: i32,
    zxid: Zxid,
    err: ErrorCode,
    body: &Response<'_>,
) -> usize {
    put_frame(out, |out| {
        out.put_i32(xid);
        out.put_i64(zxid.0);
        out.put_i32(err.code());
        if err == ErrorCode::Ok {
            put_response(out, body);
        }
    })
}

/// Appends a watch notification frame: `ReplyHeader{-1, zxid, 0}` + `WatcherEvent`.
/// `zxid` is the triggering txn's, or -1 for events synthesised by setWatches. Returns the
/// payload length.
pub fn encode_notification(
    out: &mut impl FrameBuf,
    zxid: Zxid,
    event: EventType,
    state: i32,
    path: &str,
) -> usize {
    put_frame(out, |out| {
        out.put_i32(-1);
        out.put_i64(zxid.0);
        out.put_i32(0);
        out.put_i32(event.code());
        out.put_i32(state);
        put_ustring(out, path);
    })
}

fn put_response(out: &mut impl BufMut, body: &Response<'_>) {
    match body {
        Response::Empty => {}
        Response::Create { path } | Response::Sync { path } => put_ustring(out, path),
        Response::Create2 { path, stat } => {
            put_ustring(out, path);
            put_stat(out, stat);
        }
        Response::Stat(stat) => put_stat(out, stat),
        Response::GetData { data, stat } => {
            put_buffer_opt(out, *data);
            put_stat(out, stat);
        }
        Response::GetAcl { acl, stat } => {
            put_acls(out, acl);
            put_stat(out, stat);
        }
        Response::GetChildren { children } | Response::GetEphemerals(children) => {
            put_strings(out, children)
        }
        Response::GetChildren2 { children, stat } => {
            put_strings(out, children);
            put_stat(out, stat);
        }
        Response::Multi(results) => put_multi_results(out, results),
        Response::MultiRead(results) => put_read_results(out, results),
        Response::GetAllChildrenNumber(n) => out.put_i32(*n),
        Response::WhoAmI(infos) => put_client_infos(out, infos),
        Response::AddWatch => out.put_i32(0),
        Response::Sasl { token } => put_buffer_opt(out, *token),
    }
}

fn put_multi_results(out: &mut impl BufMut, results: &[OpResult]) {
    for result in results {
        match result {
            OpResult::Create { opcode, path, stat } => {
                if *opcode == OpCode::Create {
                    put_multi_header(out, OpCode::Create.code(), false, 0);
                    put_ustring(out, path);
                } else {
                    put_multi_header(out, OpCode::Create2.code(), false, 0);
                    put_ustring(out, path);
                    put_stat(out, stat);
                }
            }
            OpResult::Delete => put_multi_header(out, OpCode::Delete.code(), false, 0),
            OpResult::SetData { stat } => {
                put_multi_header(out, OpCode::SetData.code(), false, 0);
                put_stat(out, stat);
            }
            OpResult::SetAcl { stat } => {
                put_multi_header(out, OpCode::SetAcl.code(), false, 0);
                put_stat(out, stat);
            }
            OpResult::Check => put_multi_header(out, OpCode::Check.code(), false, 0),
            OpResult::Error(code) => put_error_result(out, *code),
        }
    }
    put_multi_header(out, -1, true, -1);
}

fn put_error_result(out: &mut impl BufMut, code: ErrorCode) {
    put_multi_header(out, OpCode::Error.code(), false, code.code());
    out.put_i32(code.code());
}

fn put_read_results(out: &mut impl BufMut, results: &[ReadResult]) {
    for result in results {
        match result {
            ReadResult::GetChildren { children } => {
                put_multi_header(out, OpCode::GetChildren.code(), false, 0);
                put_strings(out, children);
            }
            ReadResult::GetData { data, stat } => {
                put_multi_header(out, OpCode::GetData.code(), false, 0);
                put_buffer_opt(out, data.as_deref());
                put_stat(out, stat);
            }
            ReadResult::Error(code) => put_error_result(out, *code),
        }
    }
    put_multi_header(out, -1, true, -1);
}

/// Decodes just the ReplyHeader of a reply payload, to find out which request it answers
/// (or that it is a notification, xid -1).
pub fn decode_reply_header(payload: &[u8]) -> Result<ReplyHeader, DecodeError> {
    read_reply_header(&mut Reader::new(payload))
}

fn read_reply_header(r: &mut Reader<'_>) -> Result<ReplyHeader, DecodeError> {
    Ok(ReplyHeader {
        xid: r.i32()?,
        zxid: r.zxid()?,
        err: r.i32()?,
    })
}

/// Decodes a notification payload (reply xid -1).
pub fn decode_notification(payload: &[u8]) -> Result<(ReplyHeader, WatcherEvent), DecodeError> {
    let mut reader = Reader::new(payload);
    let header = read_reply_header(&mut reader)?;
    Ok((header, read_watcher_event(&mut reader)?))
}

fn read_watcher_event(r: &mut Reader<'_>) -> Result<WatcherEvent, DecodeError> {
    let code = r.i32()?;
    Ok(WatcherEvent {
        event_type: EventType::from_code(code).ok_or(DecodeError::UnknownEventType(code))?,
        state: r.i32()?,
        path: r.ustring()?,
    })
}

/// Decodes a reply payload (client side), given the opcode of the request it answers.
/// The body is `None` when `err != 0`. A notification (xid -1) decodes as
/// [`OwnedResponse::Notification`] whatever `opcode` says. Trailing bytes are ignored.
pub fn decode_reply(
    payload: &[u8],
    opcode: OpCode,
) -> Result<(ReplyHeader, Option<OwnedResponse>), DecodeError> {
    let mut r = Reader::new(payload);
    let header = read_reply_header(&mut r)?;
    if header.xid == -1 {
        let event = read_watcher_event(&mut r)?;
        return Ok((header, Some(OwnedResponse::Notification(event))));
    }
    if header.err != 0 {
        return Ok((header, None));
    }
    Ok((header, Some(read_response(&mut r, opcode)?)))
}

fn read_response(r: &mut Reader<'_>, opcode: OpCode) -> Result<OwnedResponse, DecodeError> {
    Ok(match opcode {
        OpCode::Create => OwnedResponse::Create { path: r.ustring()? },
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => OwnedResponse::Create2 {
            path: r.ustring()?,
            stat: r.stat()?,
        },
        OpCode::Exists | OpCode::SetData | OpCode::SetAcl => OwnedResponse::Stat(r.stat()?),
        // A standalone check: Java answers a SetDataResponse, others may send nothing.
        OpCode::Check if r.remaining() > 0 => OwnedResponse::Stat(r.stat()?),
        OpCode::GetData | OpCode::Reconfig => OwnedResponse::GetData {
            data: r.buffer_opt()?,
            stat: r.stat()?,
        },
        OpCode::GetAcl => OwnedResponse::GetAcl {
            acl: r.acls()?,
            stat: r.stat()?,
        },
        OpCode::GetChildren => OwnedResponse::GetChildren {
            children: r.strings()?,
        },
        OpCode::GetChildren2 => OwnedResponse::GetChildren2 {
            children: r.strings()?,
            stat: r.stat()?,
        },
        OpCode::Sync => OwnedResponse::Sync { path: r.ustring()? },
        OpCode::Multi => OwnedResponse::Multi(read_multi_results(r)?),
        OpCode::MultiRead => OwnedResponse::MultiRead(read_read_results(r)?),
        OpCode::GetEphemerals => OwnedResponse::GetEphemerals(r.strings()?),
        OpCode::GetAllChildrenNumber => OwnedResponse::GetAllChildrenNumber(r.i32()?),
        OpCode::WhoAmI => OwnedResponse::WhoAmI(r.vector(Reader::client_info)?),
        OpCode::AddWatch => {
            r.i32()?;
            OwnedResponse::AddWatch
        }
        OpCode::Sasl => OwnedResponse::Sasl {
            token: r.buffer_opt()?,
        },
        _ => OwnedResponse::Empty,
    })
}

fn read_error_code(r: &mut Reader<'_>) -> Result<ErrorCode, DecodeError> {
    let code = r.i32()?;
    ErrorCode::from_code(code).ok_or(DecodeError::UnknownErrorCode(code))
}

fn read_multi_results(r: &mut Reader<'_>) -> Result<Vec<OpResult>, DecodeError> {
    decode_multi_ops(r, |op_type, r| {
        Ok(match OpCode::from_code(op_type) {
            Some(OpCode::Create) => OpResult::Create {
                opcode: OpCode::Create,
                path: r.ustring()?,
                stat: Stat::default(),
            },
            Some(OpCode::Create2) => OpResult::Create {
                opcode: OpCode::Create2,
                path: r.ustring()?,
                stat: r.stat()?,
            },
            Some(OpCode::Delete) => OpResult::Delete,
            Some(OpCode::SetData) => OpResult::SetData { stat: r.stat()? },
            Some(OpCode::SetAcl) => OpResult::SetAcl { stat: r.stat()? },
            Some(OpCode::Check) => OpResult::Check,
            Some(OpCode::Error) => OpResult::Error(read_error_code(r)?),
            _ => return Err(DecodeError::UnknownMultiResult(op_type)),
        })
    })
}

fn read_read_results(r: &mut Reader<'_>) -> Result<Vec<ReadResult>, DecodeError> {
    decode_multi_ops(r, |op_type, r| {
        Ok(match OpCode::from_code(op_type) {
            Some(OpCode::GetChildren) => ReadResult::GetChildren {
                children: r.strings()?,
            },
            Some(OpCode::GetData) => ReadResult::GetData {
                data: r.buffer_opt()?,
                stat: r.stat()?,
            },
            Some(OpCode::Error) => ReadResult::Error(read_error_code(r)?),
            _ => return Err(DecodeError::UnknownMultiResult(op_type)),
        })
    })
}
