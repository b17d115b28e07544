//! Hostile and malformed input on raw TCP: the server must answer with an error or close
//! that one connection, and keep serving everyone else.
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
