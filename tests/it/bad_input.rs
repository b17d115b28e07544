//! Hostile and malformed input on raw TCP: the server must answer with an error or close
//! that one connection, and keep serving everyone else. Also legal input that the
//! `zookeeper-client` crate never sends: null data buffers and SASL requests.
//!
//! Frames are built by hand here (big-endian, length-prefixed jute) so that these tests
//! depend on nothing but std and tokio.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zookeeper_client as zk;

use crate::harness::{bounded, client, deadline, Flavor, Server, WAIT};

const OPEN: &zk::CreateOptions<'static> =
    &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

/// Error codes of `ReplyHeader.err` used below.
const ERR_UNIMPLEMENTED: i32 = -6;
const ERR_BAD_ARGUMENTS: i32 = -8;
const ERR_NO_NODE: i32 = -101;

/// Opcodes used below.
const OP_CREATE: i32 = 1;
const OP_EXISTS: i32 = 3;
const OP_GET_DATA: i32 = 4;
const OP_SET_DATA: i32 = 5;
const OP_MULTI: i32 = 14;
const OP_CREATE2: i32 = 15;
const OP_MULTI_READ: i32 = 22;
const OP_SASL: i32 = 102;

/// A little builder of jute payloads.
#[derive(Default)]
struct Jute(Vec<u8>);

impl Jute {
    fn int(mut self, value: i32) -> Jute {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn long(mut self, value: i64) -> Jute {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn boolean(mut self, value: bool) -> Jute {
        self.0.push(u8::from(value));
        self
    }

    fn buffer(self, bytes: &[u8]) -> Jute {
        let mut jute = self.int(i32::try_from(bytes.len()).expect("small buffer"));
        jute.0.extend_from_slice(bytes);
        jute
    }

    /// A null `buffer`: the length -1 and no bytes.
    fn null_buffer(self) -> Jute {
        self.int(-1)
    }

    /// A `MultiHeader`.
    fn multi_header(self, opcode: i32, done: bool) -> Jute {
        self.int(opcode).boolean(done).int(-1)
    }

    fn string(self, text: &str) -> Jute {
        self.buffer(text.as_bytes())
    }

    /// A world:anyone ALL ACL list.
    fn open_acl(self) -> Jute {
        self.int(1).int(31).string("world").string("anyone")
    }

    /// The payload with its i32 length prefix.
    fn frame(self) -> Vec<u8> {
        let mut framed = i32::try_from(self.0.len())
            .expect("small frame")
            .to_be_bytes()
            .to_vec();
        framed.extend_from_slice(&self.0);
        framed
    }
}

/// A reply: header fields and the body bytes after the header.
#[derive(Debug)]
struct Reply {
    xid: i32,
    zxid: i64,
    err: i32,
    body: Vec<u8>,
}

/// A raw client speaking the ZooKeeper protocol by hand.
struct RawClient {
    stream: TcpStream,
}

impl RawClient {
    /// Connects and completes a session handshake.
    async fn connect(server: &Server) -> RawClient {
        let mut raw = RawClient::open(server).await;
        let request = Jute::default()
            .int(0)
            .long(0)
            .int(10_000)
            .long(0)
            .buffer(&[0; 16])
            .boolean(false)
            .frame();
        raw.send(&request).await;
        let response = bounded("the ConnectResponse", raw.read_frame())
            .await
            .expect("a ConnectResponse");
        let timeout = i32::from_be_bytes(response[4..8].try_into().unwrap());
        let session_id = i64::from_be_bytes(response[8..16].try_into().unwrap());
        assert!(
            timeout > 0 && session_id != 0,
            "session refused: {response:?}"
        );
        raw
    }

    /// Opens a TCP connection without any handshake.
    async fn open(server: &Server) -> RawClient {
        let stream = bounded("TCP connect", TcpStream::connect(server.socket_addr()))
            .await
            .expect("connect");
        RawClient { stream }
    }

    async fn send(&mut self, bytes: &[u8]) {
        bounded("write", self.stream.write_all(bytes))
            .await
            .expect("write");
    }

    /// One frame's payload, or None at end of stream or on a reset.
    async fn read_frame(&mut self) -> Option<Vec<u8>> {
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length).await.ok()?;
        let length = usize::try_from(i32::from_be_bytes(length)).expect("a sane reply length");
        let mut payload = vec![0u8; length];
        self.stream.read_exact(&mut payload).await.ok()?;
        Some(payload)
    }

    /// Sends a request and returns its reply, skipping watch notifications (xid -1).
    async fn call(&mut self, xid: i32, opcode: i32, body: Jute) -> Reply {
        let request = Jute::default().int(xid).int(opcode);
        let mut request = request.0;
        request.extend_from_slice(&body.0);
        self.send(&Jute(request).frame()).await;
        loop {
            let payload = bounded("a reply", self.read_frame())
                .await
                .expect("connection closed before the reply");
            let reply = Reply {
                xid: i32::from_be_bytes(payload[0..4].try_into().unwrap()),
                zxid: i64::from_be_bytes(payload[4..12].try_into().unwrap()),
                err: i32::from_be_bytes(payload[12..16].try_into().unwrap()),
                body: payload[16..].to_vec(),
            };
            if reply.xid != -1 {
                assert_eq!(reply.xid, xid, "replies come in request order");
                return reply;
            }
        }
    }

    /// Reads until the server closes the connection, ignoring anything it sends first.
    async fn expect_closed(&mut self, why: &str) {
        let mut sink = [0u8; 4096];
        let closed = async {
            loop {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        };
        if tokio::time::timeout(WAIT, closed).await.is_err() {
            panic!("the server kept the connection open after {why}");
        }
    }
}

/// Proves a server is healthy: a separate, well-behaved client can still write and read.
async fn still_serving(zk: &zk::Client, name: &str) {
    let path = format!("/healthy-{name}");
    bounded("create", zk.create(&path, name.as_bytes(), OPEN))
        .await
        .unwrap();
    let (data, _) = bounded("get", zk.get_data(&path)).await.unwrap();
    assert_eq!(data, name.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_close_only_that_connection() {
    deadline(async {
        let server = Server::start();
        let healthy = client(&server).await;
        let mut bystander = RawClient::connect(&server).await;

        // Not a frame at all: its first four bytes read as a 1.2 GB length.
        let mut http = RawClient::open(&server).await;
        http.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        http.expect_closed("an HTTP request").await;
        still_serving(&healthy, "http").await;

        // A well-sized first frame whose content is not a ConnectRequest.
        let mut junk = RawClient::open(&server).await;
        junk.send(&Jute(vec![0xde, 0xad, 0xbe, 0xef, 0x01]).frame())
            .await;
        junk.expect_closed("a malformed ConnectRequest").await;
        still_serving(&healthy, "junk").await;

        let reply = bystander
            .call(
                1,
                OP_EXISTS,
                Jute::default().string("/healthy-junk").boolean(false),
            )
            .await;
        assert_eq!(reply.err, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_length_closes_the_connection() {
    deadline(async {
        let server = Server::start();
        let healthy = client(&server).await;
        let mut raw = RawClient::connect(&server).await;
        raw.send(&(-1i32).to_be_bytes()).await;
        raw.expect_closed("a negative frame length").await;
        still_serving(&healthy, "negative").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_length_closes_the_connection() {
    deadline(async {
        let server = Server::start();
        let healthy = client(&server).await;
        let mut raw = RawClient::connect(&server).await;
        raw.send(&0x7fff_ffffi32.to_be_bytes()).await;
        raw.send(&[0u8; 64]).await;
        raw.expect_closed("a 2 GiB frame length").await;
        still_serving(&healthy, "oversized").await;

        // The same before the handshake.
        let mut early = RawClient::open(&server).await;
        early.send(&0x7fff_ffffi32.to_be_bytes()).await;
        early.expect_closed("a 2 GiB first frame").await;
        still_serving(&healthy, "oversized-early").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_opcode_is_unimplemented() {
    deadline(async {
        let server = Server::start();
        let healthy = client(&server).await;
        let mut raw = RawClient::connect(&server).await;
        let reply = raw.call(7, 4242, Jute::default()).await;
        assert_eq!((reply.xid, reply.err), (7, ERR_UNIMPLEMENTED));

        if server.flavor() == Flavor::ZooKeeper {
            // Apache ZooKeeper 3.8 sends the reply and then closes the connection (a quirk).
            raw.expect_closed("an unknown opcode").await;
        } else {
            // edgekeeper keeps the connection: it goes on serving.
            let reply = raw
                .call(
                    8,
                    OP_GET_DATA,
                    Jute::default().string("/missing").boolean(false),
                )
                .await;
            assert_eq!((reply.xid, reply.err), (8, ERR_NO_NODE));
            let reply = raw
                .call(
                    9,
                    OP_EXISTS,
                    Jute::default().string("/zookeeper").boolean(false),
                )
                .await;
            assert_eq!(reply.err, 0);
            assert_eq!(reply.body.len(), 68, "an ExistsResponse is one Stat");
        }
        still_serving(&healthy, "opcode").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_paths_are_rejected() {
    deadline(async {
        let server = Server::start();
        let healthy = client(&server).await;
        let mut raw = RawClient::connect(&server).await;
        let create = |path: &str, flags: i32| {
            Jute::default()
                .string(path)
                .buffer(b"x")
                .open_acl()
                .int(flags)
        };
        assert_eq!(raw.call(1, OP_CREATE, create("/a", 0)).await.err, 0);

        // Paths whose parent exists, so the path itself is what is wrong.
        let bad = [
            "//b",
            "/a/",
            "/a/.",
            "/a/..",
            "/a/\u{1}x",
            "/a/\u{85}",
            "relative",
            "",
            "/nul\u{0}byte",
        ];
        for (xid, path) in (10..).zip(bad) {
            assert_eq!(
                raw.call(xid, OP_CREATE, create(path, 0)).await.err,
                ERR_BAD_ARGUMENTS,
                "create {path:?}"
            );
        }
        // Empty components below a missing parent: ZooKeeper looks the parent up first and says
        // NoNode; checking the path first (BadArguments) is as good. Either way nothing is made.
        for (xid, path) in (30..).zip(["a//b", "/a//b", "/a/./b", "/a//"]) {
            let err = raw.call(xid, OP_CREATE, create(path, 0)).await.err;
            assert!(
                err == ERR_BAD_ARGUMENTS || err == ERR_NO_NODE,
                "create {path:?}: {err}"
            );
        }
        // Flags outside 0..=6 are bad arguments too.
        assert_eq!(
            raw.call(40, OP_CREATE, create("/flags", 9)).await.err,
            ERR_BAD_ARGUMENTS
        );

        let reply = raw.call(41, OP_CREATE, create("/ok", 0)).await;
        assert_eq!(reply.err, 0);
        assert_eq!(&reply.body[4..], b"/ok", "a CreateResponse holds the path");
        let mut children = bounded("list /", healthy.list_children("/")).await.unwrap();
        children.sort();
        assert_eq!(children, ["a", "ok", "zookeeper"]);
        assert!(bounded("list /a", healthy.list_children("/a"))
            .await
            .unwrap()
            .is_empty());
        still_serving(&healthy, "paths").await;
    })
    .await;
}

/// The data length that starts a GetDataResponse body, and the Stat's `dataLength`
/// (the Stat follows the data; `dataLength` is its ninth field, 56 bytes in).
fn data_lengths(body: &[u8]) -> (i32, i32) {
    let len = i32::from_be_bytes(body[0..4].try_into().unwrap());
    let stat = 4 + usize::try_from(len.max(0)).unwrap();
    let data_length = i32::from_be_bytes(body[stat + 56..stat + 60].try_into().unwrap());
    (len, data_length)
}

/// Reads `/null`, `/null2`, `/nullm`, `/set` (null data) and `/empty` (empty data) with
/// getData and multiRead, expecting the wire lengths -1 and 0 and a `dataLength` of 0.
async fn assert_null_data(raw: &mut RawClient, first_xid: i32) {
    let cases = [
        ("/null", -1),
        ("/null2", -1),
        ("/nullm", -1),
        ("/set", -1),
        ("/empty", 0),
    ];
    for (xid, (path, want)) in (first_xid..).zip(cases) {
        let reply = raw
            .call(
                xid,
                OP_GET_DATA,
                Jute::default().string(path).boolean(false),
            )
            .await;
        assert_eq!(reply.err, 0, "getData {path}");
        assert_eq!(data_lengths(&reply.body), (want, 0), "getData {path}");
    }
    // multiRead: getData /null then getData /empty.
    let request = Jute::default()
        .multi_header(OP_GET_DATA, false)
        .string("/null")
        .boolean(false)
        .multi_header(OP_GET_DATA, false)
        .string("/empty")
        .boolean(false)
        .multi_header(-1, true);
    let reply = raw.call(first_xid + 10, OP_MULTI_READ, request).await;
    assert_eq!(reply.err, 0, "multiRead");
    let body = &reply.body;
    // Each result: MultiHeader{type, done, err} (9 bytes), then a GetDataResponse.
    assert_eq!(
        &body[0..9],
        &[0, 0, 0, 4, 0, 0, 0, 0, 0],
        "first multiRead header"
    );
    assert_eq!(data_lengths(&body[9..]), (-1, 0), "multiRead getData /null");
    let second = 9 + 4 + 68;
    assert_eq!(
        &body[second..second + 9],
        &[0, 0, 0, 4, 0, 0, 0, 0, 0],
        "second multiRead header"
    );
    assert_eq!(
        data_lengths(&body[second + 9..]),
        (0, 0),
        "multiRead getData /empty"
    );
}

/// ZooKeeper keeps null data (a buffer of length -1 in create, create2, multi's create and
/// setData) distinct from empty data: getData and multiRead answer length -1, the Stat says
/// `dataLength` 0, and it survives restarts (log replay and snapshots).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_data_is_kept_distinct_from_empty() {
    deadline(async {
        // Frequent snapshots so that the second restart recovers from one (edgekeeper only).
        let mut server = Server::start_with("snapshot_every_txns = 4");
        let mut raw = RawClient::connect(&server).await;
        let create = |path: &str| Jute::default().string(path).null_buffer().open_acl().int(0);
        assert_eq!(raw.call(1, OP_CREATE, create("/null")).await.err, 0);
        assert_eq!(raw.call(2, OP_CREATE2, create("/null2")).await.err, 0);
        let empty = Jute::default()
            .string("/empty")
            .buffer(b"")
            .open_acl()
            .int(0);
        assert_eq!(raw.call(3, OP_CREATE, empty).await.err, 0);
        let multi = Jute::default()
            .multi_header(OP_CREATE, false)
            .string("/nullm")
            .null_buffer()
            .open_acl()
            .int(0)
            .multi_header(-1, true);
        let reply = raw.call(4, OP_MULTI, multi).await;
        assert_eq!(reply.err, 0, "multi create");
        let set = Jute::default()
            .string("/set")
            .buffer(b"x")
            .open_acl()
            .int(0);
        assert_eq!(raw.call(5, OP_CREATE, set).await.err, 0);
        let set_null = Jute::default().string("/set").null_buffer().int(-1);
        let reply = raw.call(6, OP_SET_DATA, set_null).await;
        assert_eq!(reply.err, 0, "setData null");
        let data_length = i32::from_be_bytes(reply.body[56..60].try_into().unwrap());
        assert_eq!(data_length, 0, "setData's Stat has dataLength 0");
        assert_null_data(&mut raw, 10).await;
        drop(raw);

        // Recovery from the log.
        tokio::task::block_in_place(|| server.restart());
        let mut raw = RawClient::connect(&server).await;
        assert_null_data(&mut raw, 30).await;

        if server.flavor() == Flavor::Edgekeeper {
            // More writes so that a snapshot holds the null nodes, then recover from it.
            for xid in 50..60 {
                let body = Jute::default().string("/empty").buffer(b"").int(-1);
                assert_eq!(raw.call(xid, OP_SET_DATA, body).await.err, 0);
            }
            let snapshot_dir = server.data_dir().join("snapshot");
            let snapshot_written = async {
                loop {
                    let count = std::fs::read_dir(&snapshot_dir)
                        .map(|dir| dir.filter_map(Result::ok).count())
                        .unwrap_or(0);
                    if count > 0 {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            };
            bounded("a snapshot", snapshot_written).await;
        }
        drop(raw);
        tokio::task::block_in_place(|| server.restart());
        let mut raw = RawClient::connect(&server).await;
        assert_null_data(&mut raw, 70).await;
    })
    .await;
}

/// Without SASL configured, ZooKeeper 3.8 answers a SASL request (GetSASLRequest) with
/// err 0, reply zxid 0 and a SetSASLResponse whose token is null; clients then fail
/// authentication themselves. The connection goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_without_sasl_configured_answers_a_null_token() {
    deadline(async {
        let server = Server::start();
        let mut raw = RawClient::connect(&server).await;
        // A write first, so that the server's zxid is not 0.
        let create = Jute::default().string("/s").buffer(b"x").open_acl().int(0);
        assert_eq!(raw.call(1, OP_CREATE, create).await.err, 0);

        for (xid, token) in [(2, &b""[..]), (3, &b"some token"[..])] {
            let reply = raw.call(xid, OP_SASL, Jute::default().buffer(token)).await;
            assert_eq!((reply.xid, reply.zxid, reply.err), (xid, 0, 0));
            assert_eq!(reply.body, (-1i32).to_be_bytes(), "a null token");
        }

        let reply = raw
            .call(4, OP_EXISTS, Jute::default().string("/s").boolean(false))
            .await;
        assert_eq!(reply.err, 0);
    })
    .await;
}
