//! Codec hot paths: decode a getData request, encode a 1 KiB getData reply, decode a
//! create request.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ek_jute::{decode_request, encode_reply, encode_request, Request, Response};
use ek_types::{Acl, ErrorCode, OpCode, Stat, WriteOp, Zxid};

fn request_payload(request: &Request) -> Vec<u8> {
    let mut frame = Vec::new();
    encode_request(&mut frame, 42, request);
    frame.split_off(4)
}

fn decode_get_data(c: &mut Criterion) {
    let payload = request_payload(&Request::GetData {
        path: "/services/default/web/instance-0000000042".into(),
        watch: true,
    });
    c.bench_function("decode getData request", |b| {
        b.iter(|| decode_request(black_box(&payload)))
    });
}

fn encode_get_data_reply(c: &mut Criterion) {
    let data = vec![0xabu8; 1024];
    let stat = Stat {
        data_length: 1024,
        ..Stat::default()
    };
    let mut out = BytesMut::with_capacity(4096);
    let mut group = c.benchmark_group("encode getData reply");
    group.throughput(Throughput::Bytes(1024));
    group.bench_function("1 KiB", |b| {
        b.iter(|| {
            out.clear();
            let body = Response::GetData {
                data: black_box(Some(&data[..])),
                stat,
            };
            encode_reply(&mut out, 42, Zxid(0x1_0000_0001), ErrorCode::Ok, &body);
            black_box(out.len())
        })
    });
    group.finish();
}

fn decode_create(c: &mut Criterion) {
    let payload = request_payload(&Request::Write(WriteOp::Create {
        opcode: OpCode::Create2,
        path: "/locks/lock-".into(),
        data: Some(vec![1; 64]),
        acl: Acl::open_unsafe(),
        flags: 3,
        ttl_ms: 0,
    }));
    c.bench_function("decode create request", |b| {
        b.iter(|| decode_request(black_box(&payload)))
    });
}

criterion_group!(
    benches,
    decode_get_data,
    encode_get_data_reply,
    decode_create
);
criterion_main!(benches);
