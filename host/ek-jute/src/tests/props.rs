//! Round trips of generated values and no-panic checks on arbitrary bytes.

use super::payload;
use crate::*;
use bytes::BytesMut;
use ek_types::{Acl, ErrorCode, EventType, Id, OpCode, OpResult, SessionId, Stat, WriteOp, Zxid};
use proptest::prelude::*;
use proptest::strategy::Union;

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,8}"
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 0..4)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..24)
}

/// A jute buffer that may be null (`None`, wire length -1); null and empty stay distinct.
fn opt_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(bytes())
}

fn zxid() -> impl Strategy<Value = Zxid> {
    any::<i64>().prop_map(Zxid)
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (zxid(), zxid(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), zxid()),
    )
        .prop_map(|(a, b, c)| Stat {
            czxid: a.0,
            mzxid: a.1,
            ctime: a.2,
            mtime: a.3,
            version: b.0,
            cversion: b.1,
            aversion: b.2,
            ephemeral_owner: b.3,
            data_length: c.0,
            num_children: c.1,
            pzxid: c.2,
        })
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    let acl = (any::<i32>(), text(), text()).prop_map(|(perms, scheme, id)| Acl {
        perms,
        id: Id { scheme, id },
    });
    prop::collection::vec(acl, 0..3)
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop::sample::select(ErrorCode::ALL.to_vec())
}

fn create_op() -> impl Strategy<Value = WriteOp> {
    let opcodes = vec![
        OpCode::Create,
        OpCode::Create2,
        OpCode::CreateContainer,
        OpCode::CreateTtl,
    ];
    (
        prop::sample::select(opcodes),
        text(),
        opt_bytes(),
        acls(),
        any::<i32>(),
        any::<i64>(),
    )
        .prop_map(|(opcode, path, data, acl, flags, ttl_ms)| WriteOp::Create {
            opcode,
            path,
            data,
            acl,
            flags,
            ttl_ms: if opcode == OpCode::CreateTtl {
                ttl_ms
            } else {
                0
            },
        })
}

/// Write ops; setACL only when `with_set_acl` (it is not allowed in multi).
fn write_op(with_set_acl: bool) -> impl Strategy<Value = WriteOp> {
    let mut ops = vec![
        create_op().boxed(),
        (text(), any::<i32>())
            .prop_map(|(path, version)| WriteOp::Delete { path, version })
            .boxed(),
        (text(), opt_bytes(), any::<i32>())
            .prop_map(|(path, data, version)| WriteOp::SetData {
                path,
                data,
                version,
            })
            .boxed(),
        (text(), any::<i32>())
            .prop_map(|(path, version)| WriteOp::Check { path, version })
            .boxed(),
    ];
    if with_set_acl {
        let set_acl = (text(), acls(), any::<i32>())
            .prop_map(|(path, acl, version)| WriteOp::SetAcl { path, acl, version });
        ops.push(set_acl.boxed());
    }
    Union::new(ops)
}

fn read_op() -> impl Strategy<Value = ReadOp> {
    prop_oneof![
        text().prop_map(|path| ReadOp::GetChildren { path }),
        text().prop_map(|path| ReadOp::GetData { path }),
    ]
}

fn path_watch_requests() -> Vec<BoxedStrategy<Request>> {
    vec![
        (text(), any::<bool>())
            .prop_map(|(path, watch)| Request::Exists { path, watch })
            .boxed(),
        (text(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetData { path, watch })
            .boxed(),
        (text(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetChildren { path, watch })
            .boxed(),
        (text(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetChildren2 { path, watch })
            .boxed(),
        text().prop_map(|path| Request::GetAcl { path }).boxed(),
        text().prop_map(|path| Request::Sync { path }).boxed(),
        text()
            .prop_map(|prefix| Request::GetEphemerals { prefix })
            .boxed(),
        text()
            .prop_map(|path| Request::GetAllChildrenNumber { path })
            .boxed(),
        (text(), any::<i32>())
            .prop_map(|(path, watcher_type)| Request::CheckWatches { path, watcher_type })
            .boxed(),
        (text(), any::<i32>())
            .prop_map(|(path, watcher_type)| Request::RemoveWatches { path, watcher_type })
            .boxed(),
        (text(), any::<i32>())
            .prop_map(|(path, mode)| Request::AddWatch { path, mode })
            .boxed(),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let mut requests = path_watch_requests();
    requests.extend([
        Just(Request::Ping).boxed(),
        Just(Request::WhoAmI).boxed(),
        Just(Request::CloseSession).boxed(),
        (any::<i32>(), text(), bytes())
            .prop_map(|(auth_type, scheme, auth)| Request::Auth {
                auth_type,
                scheme,
                auth,
            })
            .boxed(),
        (
            zxid(),
            strings(),
            strings(),
            strings(),
            strings(),
            strings(),
        )
            .prop_map(
                |(relative_zxid, data, exist, child, p, pr)| Request::SetWatches {
                    relative_zxid,
                    data,
                    exist,
                    child,
                    persistent: p,
                    persistent_recursive: pr,
                },
            )
            .boxed(),
        write_op(true).prop_map(Request::Write).boxed(),
        prop::collection::vec(write_op(false), 0..4)
            .prop_map(Request::Multi)
            .boxed(),
        prop::collection::vec(read_op(), 0..4)
            .prop_map(Request::MultiRead)
            .boxed(),
        (text(), text(), text(), any::<i64>())
            .prop_map(
                |(joining, leaving, new_members, cur_config_id)| Request::Reconfig {
                    joining,
                    leaving,
                    new_members,
                    cur_config_id,
                },
            )
            .boxed(),
        bytes().prop_map(|token| Request::Sasl { token }).boxed(),
    ]);
    Union::new(requests)
}

fn op_result() -> impl Strategy<Value = OpResult> {
    prop_oneof![
        text().prop_map(|path| OpResult::Create {
            opcode: OpCode::Create,
            path,
            stat: Stat::default()
        }),
        (text(), stat()).prop_map(|(path, stat)| OpResult::Create {
            opcode: OpCode::Create2,
            path,
            stat
        }),
        Just(OpResult::Delete),
        stat().prop_map(|stat| OpResult::SetData { stat }),
        stat().prop_map(|stat| OpResult::SetAcl { stat }),
        Just(OpResult::Check),
        error_code().prop_map(OpResult::Error),
    ]
}

fn read_result() -> impl Strategy<Value = ReadResult> {
    prop_oneof![
        strings().prop_map(|children| ReadResult::GetChildren { children }),
        (opt_bytes(), stat()).prop_map(|(data, stat)| ReadResult::GetData { data, stat }),
        error_code().prop_map(ReadResult::Error),
    ]
}

fn client_infos() -> impl Strategy<Value = Vec<ClientInfo>> {
    let info = (text(), text()).prop_map(|(auth_scheme, user)| ClientInfo { auth_scheme, user });
    prop::collection::vec(info, 0..3)
}

/// A reply body with an opcode whose reply it can be.
fn reply() -> impl Strategy<Value = (OpCode, OwnedResponse)> {
    use OwnedResponse as R;
    let empty_ops = vec![
        OpCode::Delete,
        OpCode::Ping,
        OpCode::Auth,
        OpCode::SetWatches,
        OpCode::SetWatches2,
        OpCode::CheckWatches,
        OpCode::RemoveWatches,
        OpCode::CloseSession,
        OpCode::Check,
    ];
    let stat_ops = vec![
        OpCode::Exists,
        OpCode::SetData,
        OpCode::SetAcl,
        OpCode::Check,
    ];
    let create2_ops = vec![OpCode::Create2, OpCode::CreateContainer, OpCode::CreateTtl];
    let replies = vec![
        prop::sample::select(empty_ops)
            .prop_map(|op| (op, R::Empty))
            .boxed(),
        (prop::sample::select(stat_ops), stat())
            .prop_map(|(op, stat)| (op, R::Stat(stat)))
            .boxed(),
        text()
            .prop_map(|path| (OpCode::Create, R::Create { path }))
            .boxed(),
        (prop::sample::select(create2_ops), text(), stat())
            .prop_map(|(op, path, stat)| (op, R::Create2 { path, stat }))
            .boxed(),
        (opt_bytes(), stat(), any::<bool>())
            .prop_map(|(data, stat, reconfig)| {
                let op = if reconfig {
                    OpCode::Reconfig
                } else {
                    OpCode::GetData
                };
                (op, R::GetData { data, stat })
            })
            .boxed(),
        (acls(), stat())
            .prop_map(|(acl, stat)| (OpCode::GetAcl, R::GetAcl { acl, stat }))
            .boxed(),
        strings()
            .prop_map(|children| (OpCode::GetChildren, R::GetChildren { children }))
            .boxed(),
        (strings(), stat())
            .prop_map(|(children, stat)| (OpCode::GetChildren2, R::GetChildren2 { children, stat }))
            .boxed(),
        text()
            .prop_map(|path| (OpCode::Sync, R::Sync { path }))
            .boxed(),
        prop::collection::vec(op_result(), 0..4)
            .prop_map(|results| (OpCode::Multi, R::Multi(results)))
            .boxed(),
        prop::collection::vec(read_result(), 0..4)
            .prop_map(|results| (OpCode::MultiRead, R::MultiRead(results)))
            .boxed(),
        strings()
            .prop_map(|paths| (OpCode::GetEphemerals, R::GetEphemerals(paths)))
            .boxed(),
        any::<i32>()
            .prop_map(|n| (OpCode::GetAllChildrenNumber, R::GetAllChildrenNumber(n)))
            .boxed(),
        client_infos()
            .prop_map(|infos| (OpCode::WhoAmI, R::WhoAmI(infos)))
            .boxed(),
        Just((OpCode::AddWatch, R::AddWatch)).boxed(),
        opt_bytes()
            .prop_map(|token| (OpCode::Sasl, R::Sasl { token }))
            .boxed(),
    ];
    Union::new(replies)
}

/// Feeds `bytes` to every decoder; none may panic.
fn decode_everything(bytes: &[u8]) {
    let _ = decode_request(bytes);
    let _ = decode_connect_request(bytes);
    let _ = decode_connect_response(bytes);
    let _ = decode_notification(bytes);
    let _ = decode_reply_header(bytes);
    for code in -11..=110 {
        if let Some(op) = OpCode::from_code(code) {
            let _ = decode_reply(bytes, op);
        }
    }
    let _ = four_letter_word(bytes);
    let mut buf = BytesMut::from(bytes);
    let mut decoder = FrameDecoder::new(64);
    while let Ok(Some(_)) = decoder.decode(&mut buf) {}
}

proptest! {
    #[test]
    fn request_round_trip(xid in any::<i32>(), request in request()) {
        let mut out = Vec::new();
        encode_request(&mut out, xid, &request);
        let decoded = decode_request(payload(&out)).expect("header");
        prop_assert_eq!(decoded.xid, xid);
        prop_assert_eq!(decoded.opcode, request.opcode().code());
        prop_assert_eq!(decoded.body, Ok(request));
    }

    #[test]
    fn reply_round_trip(
        xid in any::<i32>().prop_filter("not a notification", |xid| *xid != -1),
        zxid in zxid(),
        (opcode, response) in reply(),
    ) {
        let mut out = BytesMut::new();
        let body = response.as_response().expect("not a notification");
        encode_reply(&mut out, xid, zxid, ErrorCode::Ok, &body);
        let (header, decoded) = decode_reply(payload(&out), opcode).expect("decodes");
        prop_assert_eq!(header, ReplyHeader { xid, zxid, err: 0 });
        prop_assert_eq!(decoded, Some(response));
    }

    #[test]
    fn error_reply_is_header_only(
        xid in any::<i32>().prop_filter("not a notification", |xid| *xid != -1),
        err in error_code().prop_filter("an error", |err| *err != ErrorCode::Ok),
        (opcode, response) in reply(),
    ) {
        let mut out = Vec::new();
        let body = response.as_response().expect("not a notification");
        encode_reply(&mut out, xid, Zxid(7), err, &body);
        prop_assert_eq!(out.len(), 20);
        let (header, decoded) = decode_reply(payload(&out), opcode).expect("decodes");
        prop_assert_eq!(header.error_code(), Some(err));
        prop_assert_eq!(decoded, None);
    }

    #[test]
    fn notification_round_trip(zxid in zxid(), state in any::<i32>(), path in text(), kind in 0usize..5) {
        let event_type = [
            EventType::None,
            EventType::NodeCreated,
            EventType::NodeDeleted,
            EventType::NodeDataChanged,
            EventType::NodeChildrenChanged,
        ][kind];
        let mut out = Vec::new();
        encode_notification(&mut out, zxid, event_type, state, &path);
        let event = WatcherEvent { event_type, state, path };
        let (header, decoded) = decode_notification(payload(&out)).expect("decodes");
        prop_assert_eq!(header, ReplyHeader { xid: -1, zxid, err: 0 });
        prop_assert_eq!(&decoded, &event);
        let (_, reply) = decode_reply(payload(&out), OpCode::GetData).expect("decodes");
        prop_assert_eq!(reply, Some(OwnedResponse::Notification(event)));
    }

    #[test]
    fn connect_round_trip(
        zxid in zxid(),
        timeout_ms in any::<i32>(),
        session in any::<i64>(),
        passwd in bytes(),
        read_only in any::<Option<bool>>(),
    ) {
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: zxid,
            timeout_ms,
            session_id: SessionId(session),
            passwd: passwd.clone(),
            read_only,
        };
        let mut out = Vec::new();
        encode_connect_request(&mut out, &request);
        prop_assert_eq!(decode_connect_request(payload(&out)), Ok(request));
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms,
            session_id: SessionId(session),
            passwd,
            read_only,
        };
        let mut out = Vec::new();
        encode_connect_response(&mut out, &response);
        prop_assert_eq!(decode_connect_response(payload(&out)), Ok(response));
    }

    #[test]
    fn frames_survive_any_split(
        requests in prop::collection::vec(request(), 1..5),
        split in any::<prop::sample::Index>(),
    ) {
        let mut stream = Vec::new();
        for (xid, request) in requests.iter().enumerate() {
            encode_request(&mut stream, xid as i32, request);
        }
        let (first, rest) = stream.split_at(split.index(stream.len() + 1));
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::from(first);
        let mut decoded = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf).expect("valid") {
            decoded.push(decode_request(&frame).expect("header").body.expect("body"));
        }
        buf.extend_from_slice(rest);
        while let Some(frame) = decoder.decode(&mut buf).expect("valid") {
            decoded.push(decode_request(&frame).expect("header").body.expect("body"));
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(decoded, requests);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_everything(&bytes);
    }

    #[test]
    fn damaged_requests_never_panic(
        xid in any::<i32>(),
        request in request(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut out = Vec::new();
        encode_request(&mut out, xid, &request);
        let mut damaged = out[4..].to_vec();
        for (at, byte) in flips {
            let at = at.index(damaged.len());
            damaged[at] = byte;
        }
        decode_everything(&damaged);
        let truncated = &out[4..4 + cut.index(out.len() - 4)];
        decode_everything(truncated);
    }

    #[test]
    fn damaged_replies_never_panic(
        (opcode, response) in reply(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut out = Vec::new();
        let body = response.as_response().expect("not a notification");
        encode_reply(&mut out, 1, Zxid(1), ErrorCode::Ok, &body);
        let mut damaged = out[4..].to_vec();
        for (at, byte) in flips {
            let at = at.index(damaged.len());
            damaged[at] = byte;
        }
        let _ = decode_reply(&damaged, opcode);
        let truncated = &out[4..4 + cut.index(out.len() - 4)];
        let _ = decode_reply(truncated, opcode);
    }
}
