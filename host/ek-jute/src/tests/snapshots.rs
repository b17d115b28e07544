//! Hand-built frames from zk-wire.md, shown as hex and as decoded values.

use super::{hex, payload, unhex};
use crate::*;
use ek_types::{Acl, ErrorCode, EventType, OpCode, OpResult, SessionId, Stat, WriteOp, Zxid};
use expect_test::{expect, Expect};

/// Snapshots an encoded frame as hex, followed by what `decode` makes of its payload.
fn check<T: std::fmt::Debug>(frame: &[u8], decode: impl Fn(&[u8]) -> T, expect: Expect) {
    let decoded = decode(payload(frame));
    expect.assert_eq(&format!("{}{:#?}", hex(frame), decoded));
}

/// Snapshots what the server makes of a hand-written request payload (hex, no prefix).
fn check_request(payload_hex: &str, expect: Expect) {
    let decoded = decode_request(&unhex(payload_hex));
    expect.assert_eq(&format!("{decoded:?}"));
}

fn stat() -> Stat {
    Stat {
        czxid: Zxid(0x1_0000_0002),
        mzxid: Zxid(0x1_0000_0003),
        ctime: 0x0000_018f_0000_0000,
        mtime: 0x0000_018f_0000_0001,
        version: 1,
        cversion: 2,
        aversion: 3,
        ephemeral_owner: 0,
        data_length: 2,
        num_children: 0,
        pzxid: Zxid(0x1_0000_0002),
    }
}

#[test]
fn connect_request_with_read_only() {
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: Zxid::ZERO,
        timeout_ms: 30_000,
        session_id: SessionId(0),
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    let mut frame = Vec::new();
    encode_connect_request(&mut frame, &request);
    check(
        &frame,
        decode_connect_request,
        expect![[r#"
            0000: 00 00 00 2d 00 00 00 00 00 00 00 00 00 00 00 00
            0010: 00 00 75 30 00 00 00 00 00 00 00 00 00 00 00 10
            0020: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            0030: 00
            Ok(
                ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: 0x0,
                    timeout_ms: 30000,
                    session_id: 0x0,
                    passwd: [
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                    ],
                    read_only: Some(
                        false,
                    ),
                },
            )"#]],
    );
}

#[test]
fn connect_response_without_read_only() {
    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 4_000,
        session_id: SessionId(0x0100_0000_0000_0001),
        passwd: (1..=16).collect(),
        read_only: None,
    };
    let mut frame = Vec::new();
    encode_connect_response(&mut frame, &response);
    check(
        &frame,
        decode_connect_response,
        expect![[r#"
        0000: 00 00 00 24 00 00 00 00 00 00 0f a0 01 00 00 00
        0010: 00 00 00 01 00 00 00 10 01 02 03 04 05 06 07 08
        0020: 09 0a 0b 0c 0d 0e 0f 10
        Ok(
            ConnectResponse {
                protocol_version: 0,
                timeout_ms: 4000,
                session_id: 0x100000000000001,
                passwd: [
                    1,
                    2,
                    3,
                    4,
                    5,
                    6,
                    7,
                    8,
                    9,
                    10,
                    11,
                    12,
                    13,
                    14,
                    15,
                    16,
                ],
                read_only: None,
            },
        )"#]],
    );
}

#[test]
fn create_request() {
    let request = Request::Write(WriteOp::Create {
        opcode: OpCode::Create,
        path: "/a".into(),
        data: Some(b"hi".to_vec()),
        acl: Acl::open_unsafe(),
        flags: 0,
        ttl_ms: 0,
    });
    let mut frame = Vec::new();
    encode_request(&mut frame, 1, &request);
    check(
        &frame,
        decode_request,
        expect![[r#"
            0000: 00 00 00 33 00 00 00 01 00 00 00 01 00 00 00 02
            0010: 2f 61 00 00 00 02 68 69 00 00 00 01 00 00 00 1f
            0020: 00 00 00 05 77 6f 72 6c 64 00 00 00 06 61 6e 79
            0030: 6f 6e 65 00 00 00 00
            Ok(
                DecodedRequest {
                    xid: 1,
                    opcode: 1,
                    body: Ok(
                        Write(
                            Create {
                                opcode: Create,
                                path: "/a",
                                data: Some(
                                    [
                                        104,
                                        105,
                                    ],
                                ),
                                acl: [
                                    Acl {
                                        perms: 31,
                                        id: Id {
                                            scheme: "world",
                                            id: "anyone",
                                        },
                                    },
                                ],
                                flags: 0,
                                ttl_ms: 0,
                            },
                        ),
                    ),
                },
            )"#]],
    );
}

#[test]
fn multi_request() {
    let request = Request::Multi(vec![
        WriteOp::Create {
            opcode: OpCode::CreateTtl,
            path: "/t".into(),
            data: None,
            acl: Acl::read_unsafe(),
            flags: 5,
            ttl_ms: 1000,
        },
        WriteOp::Delete {
            path: "/d".into(),
            version: -1,
        },
        WriteOp::Check {
            path: "/c".into(),
            version: 3,
        },
    ]);
    let mut frame = Vec::new();
    encode_request(&mut frame, 7, &request);
    check(
        &frame,
        decode_request,
        expect![[r#"
            0000: 00 00 00 71 00 00 00 07 00 00 00 0e 00 00 00 15
            0010: 00 ff ff ff ff 00 00 00 02 2f 74 ff ff ff ff 00
            0020: 00 00 01 00 00 00 01 00 00 00 05 77 6f 72 6c 64
            0030: 00 00 00 06 61 6e 79 6f 6e 65 00 00 00 05 00 00
            0040: 00 00 00 00 03 e8 00 00 00 02 00 ff ff ff ff 00
            0050: 00 00 02 2f 64 ff ff ff ff 00 00 00 0d 00 ff ff
            0060: ff ff 00 00 00 02 2f 63 00 00 00 03 ff ff ff ff
            0070: 01 ff ff ff ff
            Ok(
                DecodedRequest {
                    xid: 7,
                    opcode: 14,
                    body: Ok(
                        Multi(
                            [
                                Create {
                                    opcode: CreateTtl,
                                    path: "/t",
                                    data: None,
                                    acl: [
                                        Acl {
                                            perms: 1,
                                            id: Id {
                                                scheme: "world",
                                                id: "anyone",
                                            },
                                        },
                                    ],
                                    flags: 5,
                                    ttl_ms: 1000,
                                },
                                Delete {
                                    path: "/d",
                                    version: -1,
                                },
                                Check {
                                    path: "/c",
                                    version: 3,
                                },
                            ],
                        ),
                    ),
                },
            )"#]],
    );
}

#[test]
fn multi_reply_with_failing_op() {
    let results = [
        OpResult::Error(ErrorCode::Ok),
        OpResult::Error(ErrorCode::NodeExists),
        OpResult::Error(ErrorCode::RuntimeInconsistency),
    ];
    let mut frame = Vec::new();
    encode_reply(
        &mut frame,
        7,
        Zxid(0x1_0000_0005),
        ErrorCode::Ok,
        &Response::Multi(&results),
    );
    check(
        &frame,
        |payload| decode_reply(payload, OpCode::Multi),
        expect![[r#"
            0000: 00 00 00 40 00 00 00 07 00 00 00 01 00 00 00 05
            0010: 00 00 00 00 ff ff ff ff 00 00 00 00 00 00 00 00
            0020: 00 ff ff ff ff 00 ff ff ff 92 ff ff ff 92 ff ff
            0030: ff ff 00 ff ff ff fe ff ff ff fe ff ff ff ff 01
            0040: ff ff ff ff
            Ok(
                (
                    ReplyHeader {
                        xid: 7,
                        zxid: 0x100000005,
                        err: 0,
                    },
                    Some(
                        Multi(
                            [
                                Error(
                                    Ok,
                                ),
                                Error(
                                    NodeExists,
                                ),
                                Error(
                                    RuntimeInconsistency,
                                ),
                            ],
                        ),
                    ),
                ),
            )"#]],
    );
}

#[test]
fn multi_reply_with_successes() {
    let results = [
        OpResult::Create {
            opcode: OpCode::Create,
            path: "/a".into(),
            stat: stat(),
        },
        OpResult::Create {
            opcode: OpCode::CreateContainer,
            path: "/b".into(),
            stat: stat(),
        },
        OpResult::Delete,
        OpResult::SetData { stat: stat() },
        OpResult::Check,
    ];
    let mut frame = Vec::new();
    encode_reply(
        &mut frame,
        8,
        Zxid(0x1_0000_0006),
        ErrorCode::Ok,
        &Response::Multi(&results),
    );
    expect![[r#"
        0000: 00 00 00 da 00 00 00 08 00 00 00 01 00 00 00 06
        0010: 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00 00
        0020: 02 2f 61 00 00 00 0f 00 00 00 00 00 00 00 00 02
        0030: 2f 62 00 00 00 01 00 00 00 02 00 00 00 01 00 00
        0040: 00 03 00 00 01 8f 00 00 00 00 00 00 01 8f 00 00
        0050: 00 01 00 00 00 01 00 00 00 02 00 00 00 03 00 00
        0060: 00 00 00 00 00 00 00 00 00 02 00 00 00 00 00 00
        0070: 00 01 00 00 00 02 00 00 00 02 00 00 00 00 00 00
        0080: 00 00 05 00 00 00 00 00 00 00 00 01 00 00 00 02
        0090: 00 00 00 01 00 00 00 03 00 00 01 8f 00 00 00 00
        00a0: 00 00 01 8f 00 00 00 01 00 00 00 01 00 00 00 02
        00b0: 00 00 00 03 00 00 00 00 00 00 00 00 00 00 00 02
        00c0: 00 00 00 00 00 00 00 01 00 00 00 02 00 00 00 0d
        00d0: 00 00 00 00 00 ff ff ff ff 01 ff ff ff ff
    "#]]
    .assert_eq(&hex(&frame));
}

#[test]
fn get_data_reply() {
    let mut frame = Vec::new();
    let body = Response::GetData {
        data: Some(b"hi"),
        stat: stat(),
    };
    encode_reply(&mut frame, 2, Zxid(0x1_0000_0003), ErrorCode::Ok, &body);
    check(
        &frame,
        |payload| decode_reply(payload, OpCode::GetData),
        expect![[r#"
            0000: 00 00 00 5a 00 00 00 02 00 00 00 01 00 00 00 03
            0010: 00 00 00 00 00 00 00 02 68 69 00 00 00 01 00 00
            0020: 00 02 00 00 00 01 00 00 00 03 00 00 01 8f 00 00
            0030: 00 00 00 00 01 8f 00 00 00 01 00 00 00 01 00 00
            0040: 00 02 00 00 00 03 00 00 00 00 00 00 00 00 00 00
            0050: 00 02 00 00 00 00 00 00 00 01 00 00 00 02
            Ok(
                (
                    ReplyHeader {
                        xid: 2,
                        zxid: 0x100000003,
                        err: 0,
                    },
                    Some(
                        GetData {
                            data: Some(
                                [
                                    104,
                                    105,
                                ],
                            ),
                            stat: Stat {
                                czxid: 0x100000002,
                                mzxid: 0x100000003,
                                ctime: 1713691951104,
                                mtime: 1713691951105,
                                version: 1,
                                cversion: 2,
                                aversion: 3,
                                ephemeral_owner: 0,
                                data_length: 2,
                                num_children: 0,
                                pzxid: 0x100000002,
                            },
                        },
                    ),
                ),
            )"#]],
    );
}

#[test]
fn error_reply_and_ping() {
    let mut frame = Vec::new();
    let body = Response::Stat(stat());
    encode_reply(&mut frame, 3, Zxid(9), ErrorCode::NoNode, &body);
    encode_reply(&mut frame, -2, Zxid(9), ErrorCode::Ok, &Response::Empty);
    expect![[r#"
        0000: 00 00 00 10 00 00 00 03 00 00 00 00 00 00 00 09
        0010: ff ff ff 9b 00 00 00 10 ff ff ff fe 00 00 00 00
        0020: 00 00 00 09 00 00 00 00
    "#]]
    .assert_eq(&hex(&frame));
}

#[test]
fn notification() {
    let mut frame = Vec::new();
    encode_notification(
        &mut frame,
        Zxid(0x1_0000_0004),
        EventType::NodeDataChanged,
        ek_types::STATE_SYNC_CONNECTED,
        "/a",
    );
    check(
        &frame,
        decode_notification,
        expect![[r#"
        0000: 00 00 00 1e ff ff ff ff 00 00 00 01 00 00 00 04
        0010: 00 00 00 00 00 00 00 03 00 00 00 03 00 00 00 02
        0020: 2f 61
        Ok(
            (
                ReplyHeader {
                    xid: -1,
                    zxid: 0x100000004,
                    err: 0,
                },
                WatcherEvent {
                    event_type: NodeDataChanged,
                    state: 3,
                    path: "/a",
                },
            ),
        )"#]],
    );
}

#[test]
fn hand_written_requests() {
    // Ping: xid -2, opcode 11, no body.
    check_request(
        "fffffffe 0000000b",
        expect!["Ok(DecodedRequest { xid: -2, opcode: 11, body: Ok(Ping) })"],
    );
    // getData "/a" watch=1, with a trailing byte (tolerated).
    check_request(
        "00000005 00000004 00000002 2f61 01 ff",
        expect![[
            r#"Ok(DecodedRequest { xid: 5, opcode: 4, body: Ok(GetData { path: "/a", watch: true }) })"#
        ]],
    );
    // Unknown opcode 4242.
    check_request(
        "00000009 00001092",
        expect!["Ok(DecodedRequest { xid: 9, opcode: 4242, body: Err(UnknownOpcode) })"],
    );
    // Server-internal opcode createSession (-10).
    check_request(
        "00000009 fffffff6",
        expect!["Ok(DecodedRequest { xid: 9, opcode: -10, body: Err(UnknownOpcode) })"],
    );
    // getData with a path length beyond the payload.
    check_request("00000005 00000004 00000010 2f61", expect!["Ok(DecodedRequest { xid: 5, opcode: 4, body: Err(Malformed(Truncated { offset: 12, needed: 16, available: 2 })) })"]);
    // create with a null path, null data, null ACL: decodes (the server rejects it).
    check_request(
        "00000001 00000001 ffffffff ffffffff ffffffff 00000000",
        expect![[
            r#"Ok(DecodedRequest { xid: 1, opcode: 1, body: Ok(Write(Create { opcode: Create, path: "", data: None, acl: [], flags: 0, ttl_ms: 0 })) })"#
        ]],
    );
    // getData with a length of -2.
    check_request("00000005 00000004 fffffffe", expect!["Ok(DecodedRequest { xid: 5, opcode: 4, body: Err(Malformed(InvalidLength { len: -2, offset: 8 })) })"]);
    // multi holding getData (not allowed in multi).
    check_request(
        "00000005 0000000e 00000004 00 ffffffff 00000002 2f61 00 ffffffff 01 ffffffff",
        expect![
            "Ok(DecodedRequest { xid: 5, opcode: 14, body: Err(Malformed(DisallowedMultiOp(4))) })"
        ],
    );
    // setWatches (101): no persistent lists.
    check_request(
        "fffffff8 00000065 0000000000000010 00000001 00000002 2f61 00000000 ffffffff",
        expect![[
            r#"Ok(DecodedRequest { xid: -8, opcode: 101, body: Ok(SetWatches { relative_zxid: 0x10, data: ["/a"], exist: [], child: [], persistent: [], persistent_recursive: [] }) })"#
        ]],
    );
    // Header cut short: the connection is closed.
    check_request(
        "00000005 0000",
        expect!["Err(Truncated { offset: 4, needed: 4, available: 2 })"],
    );
}

/// Snapshots what a client makes of a hand-written reply payload (hex, no prefix).
fn check_reply(opcode: OpCode, payload_hex: &str, expect: Expect) {
    let decoded = decode_reply(&unhex(payload_hex), opcode);
    expect.assert_eq(&format!("{decoded:?}"));
}

#[test]
fn hand_written_connect_requests() {
    let old_client = "00000000 0000000000000000 00007530 0000000000000000 00000000";
    let decoded = decode_connect_request(&unhex(old_client));
    expect!["Ok(ConnectRequest { protocol_version: 0, last_zxid_seen: 0x0, timeout_ms: 30000, session_id: 0x0, passwd: [], read_only: None })"].assert_eq(&format!("{decoded:?}"));
    let null_passwd = "00000000 0000000000000005 00000fa0 0100000000000001 ffffffff 01 ff";
    let decoded = decode_connect_request(&unhex(null_passwd));
    expect!["Ok(ConnectRequest { protocol_version: 0, last_zxid_seen: 0x5, timeout_ms: 4000, session_id: 0x100000000000001, passwd: [], read_only: Some(true) })"].assert_eq(&format!("{decoded:?}"));
    let missing_passwd = "00000000 0000000000000005 00000fa0 0100000000000001";
    let decoded = decode_connect_request(&unhex(missing_passwd));
    expect!["Err(Truncated { offset: 24, needed: 4, available: 0 })"]
        .assert_eq(&format!("{decoded:?}"));
}

#[test]
fn hostile_counts_fail_fast() {
    // A setWatches whose first list claims 2^31-1 paths but holds one.
    check_request(
        "fffffff8 00000069 0000000000000010 7fffffff 00000002 2f61",
        expect!["Ok(DecodedRequest { xid: -8, opcode: 105, body: Err(Malformed(Truncated { offset: 26, needed: 4, available: 0 })) })"],
    );
    // A getChildren reply claiming 2^31-1 children.
    check_reply(
        OpCode::GetChildren,
        "00000001 0000000000000001 00000000 7fffffff 00000000",
        expect!["Err(Truncated { offset: 24, needed: 4, available: 0 })"],
    );
    // A multi reply that never terminates.
    check_reply(
        OpCode::Multi,
        "00000001 0000000000000001 00000000 0000000d 00 00000000",
        expect!["Err(Truncated { offset: 25, needed: 4, available: 0 })"],
    );
    // A multi reply with an unknown result type.
    check_reply(
        OpCode::Multi,
        "00000001 0000000000000001 00000000 00000063 00 00000000",
        expect!["Err(UnknownMultiResult(99))"],
    );
    // An error reply carries no body even if one follows.
    check_reply(
        OpCode::GetData,
        "00000001 0000000000000001 ffffff9b 00000000",
        expect!["Ok((ReplyHeader { xid: 1, zxid: 0x1, err: -101 }, None))"],
    );
}

#[test]
fn encoders_report_payload_length() {
    let mut out = Vec::new();
    let len = encode_reply(&mut out, -2, Zxid(1), ErrorCode::Ok, &Response::Empty);
    assert_eq!((len, out.len()), (16, 20));
    let len = encode_request(&mut out, -2, &Request::Ping);
    assert_eq!((len, out.len()), (8, 32));
}

/// Null data (`None`, wire length -1) and empty data (length 0) stay distinct in create,
/// setData, getData and multiRead getData, and in the SASL token.
#[test]
fn null_and_empty_buffers_round_trip_distinctly() {
    for data in [None, Some(Vec::new()), Some(b"d".to_vec())] {
        let len = data.as_ref().map_or(-1, |d| d.len() as i32);
        for op in [
            WriteOp::Create {
                opcode: OpCode::Create,
                path: "/n".into(),
                data: data.clone(),
                acl: Acl::open_unsafe(),
                flags: 0,
                ttl_ms: 0,
            },
            WriteOp::SetData {
                path: "/n".into(),
                data: data.clone(),
                version: -1,
            },
        ] {
            let request = Request::Write(op);
            let mut frame = Vec::new();
            encode_request(&mut frame, 1, &request);
            // xid, opcode, path "/n", then the data's length.
            assert_eq!(&payload(&frame)[14..18], &len.to_be_bytes());
            let decoded = decode_request(payload(&frame)).expect("decodes");
            assert_eq!(decoded.body, Ok(request));
        }

        let replies = [
            (
                OpCode::GetData,
                OwnedResponse::GetData {
                    data: data.clone(),
                    stat: stat(),
                },
                0,
            ),
            (
                OpCode::MultiRead,
                OwnedResponse::MultiRead(vec![ReadResult::GetData {
                    data: data.clone(),
                    stat: stat(),
                }]),
                9,
            ),
            (
                OpCode::Sasl,
                OwnedResponse::Sasl {
                    token: data.clone(),
                },
                0,
            ),
        ];
        for (opcode, response, offset) in replies {
            let mut frame = Vec::new();
            let body = response.as_response().expect("a reply");
            encode_reply(&mut frame, 2, Zxid(1), ErrorCode::Ok, &body);
            // After the 16-byte reply header (and a multi header), the buffer's length.
            let at = 16 + offset;
            assert_eq!(
                &payload(&frame)[at..at + 4],
                &len.to_be_bytes(),
                "{opcode:?}"
            );
            let (_, decoded) = decode_reply(payload(&frame), opcode).expect("decodes");
            assert_eq!(decoded, Some(response), "{opcode:?}");
        }
    }
}
