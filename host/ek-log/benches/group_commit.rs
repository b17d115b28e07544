//! Group commit throughput: closed-loop submitters each append a 100-byte record and wait
//! until it is durable before the next, as a client waits for its write. With one
//! submitter every append costs an fdatasync; with 32 they share them.
//!
//! Prints ops/s, fsyncs/s and appends per fsync for each submitter count at the end.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ek_log::{Log, LogOptions, LogWriter, WriterHooks};
use ek_types::Zxid;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const RECORD_BYTES: usize = 100;

/// The highest durable zxid, with a condvar to wait for it.
#[derive(Default)]
struct Durable {
    zxid: Mutex<i64>,
    changed: Condvar,
}

impl Durable {
    fn wait_for(&self, zxid: i64) {
        let mut durable = self.zxid.lock().unwrap();
        while *durable < zxid {
            durable = self.changed.wait(durable).unwrap();
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    _log: Log,
    writer: LogWriter,
    durable: Arc<Durable>,
    next: Arc<Mutex<i64>>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, _) = Log::open(dir.path(), LogOptions::default()).expect("open");
    let durable = Arc::new(Durable::default());
    let hook = durable.clone();
    let writer = log
        .start_writer(WriterHooks::new(move |zxid: Zxid| {
            *hook.zxid.lock().unwrap() = zxid.0;
            hook.changed.notify_all();
        }))
        .expect("writer");
    Setup {
        _dir: dir,
        _log: log,
        writer,
        durable,
        next: Arc::new(Mutex::new(0)),
    }
}

/// Runs `ops` closed-loop appends spread over `submitters` threads.
fn run(setup: &Setup, submitters: u64, ops: u64) -> Duration {
    let started = Instant::now();
    let threads: Vec<_> = (0..submitters)
        .map(|i| {
            let share = ops / submitters + u64::from(i < ops % submitters);
            let (writer, durable, next) = (
                setup.writer.clone(),
                setup.durable.clone(),
                setup.next.clone(),
            );
            thread::spawn(move || {
                for _ in 0..share {
                    // Zxids are assigned and enqueued in order, as a leader does.
                    let zxid = {
                        let mut next = next.lock().unwrap();
                        *next += 1;
                        writer
                            .append(Zxid(*next), vec![7; RECORD_BYTES])
                            .expect("append");
                        *next
                    };
                    durable.wait_for(zxid);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("submitter");
    }
    started.elapsed()
}

fn group_commit(c: &mut Criterion) {
    let mut summary = Vec::new();
    let mut group = c.benchmark_group("group_commit");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for submitters in [1u64, 32] {
        let setup = setup();
        let before = setup.writer.counters();
        let mut elapsed = Duration::ZERO;
        group.bench_function(format!("append_100b/{submitters}_submitters"), |b| {
            b.iter_custom(|iters| {
                let took = run(&setup, submitters, iters);
                elapsed += took;
                took
            })
        });
        let after = setup.writer.counters();
        summary.push((
            submitters,
            after.appends - before.appends,
            after.fsyncs - before.fsyncs,
            elapsed,
        ));
    }
    group.finish();

    println!("\ngroup commit summary (100-byte records, closed-loop submitters):");
    for (submitters, appends, fsyncs, elapsed) in summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        println!(
            "  {submitters:>2} submitters: {:>9.0} ops/s, {:>8.0} fsyncs/s, {:>6.2} appends per fsync ({appends} appends, {fsyncs} fsyncs)",
            appends as f64 / secs,
            fsyncs as f64 / secs,
            appends as f64 / (fsyncs.max(1)) as f64,
        );
    }
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
