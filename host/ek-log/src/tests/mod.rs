//! Tests against real files in temp dirs. Helpers here; cases by topic in the modules.

mod install;
mod proptests;
mod recovery;
mod writer;

use crate::format::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::{Log, LogOptions, LogWriter, Recovered, WriterHooks};
use ek_types::Zxid;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Options with tiny segments, so a few records roll over.
fn small_segments() -> LogOptions {
    LogOptions {
        segment_bytes_max: 200,
        ..LogOptions::default()
    }
}

fn zx(n: i64) -> Zxid {
    Zxid(n)
}

/// A deterministic payload of varying length for record `n`.
fn payload(n: i64) -> Vec<u8> {
    let len = 10 + (n as usize * 7) % 31;
    (0..len)
        .map(|i| (n as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

fn open(dir: &Path, options: LogOptions) -> (Log, Recovered) {
    Log::open(dir, options).expect("open")
}

/// Starts a writer whose durable reports land in the returned vector.
fn start(log: &Log) -> (LogWriter, Arc<Mutex<Vec<Zxid>>>) {
    let durable = Arc::new(Mutex::new(Vec::new()));
    let sink = durable.clone();
    let writer = log
        .start_writer(WriterHooks::new(move |zxid| {
            sink.lock().unwrap().push(zxid)
        }))
        .expect("start writer");
    (writer, durable)
}

/// Opens `dir`, appends `zxids` with [`payload`], syncs, and closes everything.
fn write_records(dir: &Path, options: LogOptions, zxids: impl IntoIterator<Item = i64>) {
    let (log, _) = open(dir, options);
    let (writer, _) = start(&log);
    for n in zxids {
        writer.append(zx(n), payload(n)).expect("append");
    }
    writer.sync().expect("sync");
}

fn expected(zxids: impl IntoIterator<Item = i64>) -> Vec<(Zxid, Vec<u8>)> {
    zxids.into_iter().map(|n| (zx(n), payload(n))).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    crate::fsutil::list_by_zxid(&dir.join("log"), "log")
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

/// Offsets of each record in a segment written by [`write_records`] starting at `first`.
fn record_offsets(first: i64, last: i64) -> Vec<(i64, u64)> {
    let mut offset = SEGMENT_HEADER_LEN as u64;
    (first..=last)
        .map(|n| {
            let at = offset;
            offset += (RECORD_HEADER_LEN + payload(n).len()) as u64;
            (n, at)
        })
        .collect()
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

fn snapshot_zxids(dir: &Path) -> Vec<Zxid> {
    crate::snapshot::list(&dir.join("snapshot"))
        .unwrap()
        .into_iter()
        .map(|(zxid, _)| zxid)
        .collect()
}

/// Runs `f` and returns what it logged at WARN or above, one `LEVEL message k=v…` line per
/// event. A minimal subscriber, so that tests need no extra crate.
fn capture_warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let capture = Capture(lines.clone());
    let result = tracing::subscriber::with_default(capture, f);
    let lines = lines.lock().unwrap().clone();
    (result, lines)
}

struct Capture(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Capture {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let level = *event.metadata().level();
        if level > tracing::Level::WARN {
            return;
        }
        let mut line = level.to_string();
        event.record(&mut LineVisitor(&mut line));
        self.0.lock().unwrap().push(line);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

struct LineVisitor<'a>(&'a mut String);

impl tracing::field::Visit for LineVisitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// Copies `src` (a closed data dir) into a fresh temp dir.
fn copy_dir(src: &Path) -> tempfile::TempDir {
    let dst = tempfile::tempdir().unwrap();
    for sub in ["log", "snapshot"] {
        std::fs::create_dir_all(dst.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(src.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dst.path().join(sub).join(path.file_name().unwrap())).unwrap();
        }
    }
    dst
}
