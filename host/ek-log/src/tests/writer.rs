use super::*;
use crate::LogError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn round_trip_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), small_segments(), 1..=40);
    assert!(
        segment_files(dir.path()).len() > 5,
        "tiny segments must roll"
    );

    let (log, recovered) = open(dir.path(), small_segments());
    assert!(recovered.snapshot.is_none());
    assert_eq!(recovered.txns, expected(1..=40));
    assert_eq!(recovered.last_zxid, zx(40));

    // Appending continues in the recovered last segment and rolls on from there.
    let (writer, durable) = start(&log);
    for n in 41..=60 {
        writer.append(zx(n), payload(n)).unwrap();
    }
    assert_eq!(writer.sync().unwrap(), zx(60));
    assert_eq!(durable.lock().unwrap().last(), Some(&zx(60)));
    drop((writer, log));

    let (_log, recovered) = open(dir.path(), small_segments());
    assert_eq!(recovered.txns, expected(1..=60));
}

#[test]
fn group_commit_shares_fsyncs_and_reports_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), LogOptions::default());
    let durable = Arc::new(Mutex::new(Vec::new()));
    let sink = durable.clone();
    let fsyncs_seen = Arc::new(AtomicUsize::new(0));
    let fsync_counter = fsyncs_seen.clone();
    let hooks = WriterHooks::new(move |zxid| sink.lock().unwrap().push(zxid)).on_fsync(move |_| {
        // A slow disk: appends pile up while the writer waits.
        fsync_counter.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1));
    });
    let writer = log.start_writer(hooks).unwrap();

    // Like a leader: zxids are assigned and appended under one lock, in order.
    let next = Arc::new(Mutex::new(0i64));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (writer, next) = (writer.clone(), next.clone());
            std::thread::spawn(move || {
                for _ in 0..250 {
                    let mut next = next.lock().unwrap();
                    *next += 1;
                    writer.append(zx(*next), payload(*next)).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(writer.sync().unwrap(), zx(1000));

    let counters = writer.counters();
    assert_eq!(counters.appends, 1000);
    assert!(
        counters.fsyncs < 500,
        "fsyncs {} should be shared",
        counters.fsyncs
    );
    assert_eq!(
        counters.fsyncs as usize,
        fsyncs_seen.load(Ordering::Relaxed)
    );
    assert_eq!(counters.durable_zxid, zx(1000));
    let durable = durable.lock().unwrap();
    assert!(
        durable.windows(2).all(|w| w[0] < w[1]),
        "durable reports must increase"
    );
    assert_eq!(durable.last(), Some(&zx(1000)));
    drop((writer, log));

    let (_log, recovered) = open(dir.path(), LogOptions::default());
    assert_eq!(recovered.txns, expected(1..=1000));
}

#[test]
fn rejects_non_increasing_and_oversized_appends() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), LogOptions::default(), 1..=3);
    let (log, _) = open(dir.path(), LogOptions::default());
    let (writer, _) = start(&log);
    let err = writer.append(zx(3), vec![]).unwrap_err();
    assert!(
        matches!(err, LogError::NotIncreasing { zxid, last } if zxid == zx(3) && last == zx(3))
    );
    writer.append(zx(5), vec![]).unwrap();
    assert!(matches!(
        writer.append(zx(4), vec![]),
        Err(LogError::NotIncreasing { .. })
    ));
    let big = vec![0; crate::RECORD_PAYLOAD_MAX + 1];
    assert!(matches!(
        writer.append(zx(6), big),
        Err(LogError::RecordTooLarge { .. })
    ));
    assert!(matches!(
        log.start_writer(WriterHooks::new(|_| {})),
        Err(LogError::WriterAlreadyStarted)
    ));
}

#[test]
fn lock_refuses_a_second_open_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), LogOptions::default());
    let err = Log::open(dir.path(), LogOptions::default()).unwrap_err();
    assert!(
        matches!(&err, LogError::Locked(path) if path.ends_with("LOCK")),
        "{err}"
    );

    // The writer keeps the dir locked even after the Log handle is gone.
    let (writer, _) = start(&log);
    drop(log);
    assert!(matches!(
        Log::open(dir.path(), LogOptions::default()),
        Err(LogError::Locked(_))
    ));
    drop(writer);
    open(dir.path(), LogOptions::default());
}

#[test]
fn truncate_after_removes_later_records_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), small_segments());
    let (writer, _) = start(&log);
    for n in 1..=30 {
        writer.append(zx(n), payload(n)).unwrap();
    }
    writer.sync().unwrap();
    log.write_snapshot(zx(10), |w| w.write_all(b"at 10"))
        .unwrap();
    log.write_snapshot(zx(20), |w| w.write_all(b"at 20"))
        .unwrap();

    writer.truncate_after(zx(12)).unwrap();
    assert!(matches!(
        writer.append(zx(12), vec![]),
        Err(LogError::NotIncreasing { .. })
    ));
    let replaced: Vec<(Zxid, Vec<u8>)> = (13..=15).map(|n| (zx(n), vec![n as u8; 3])).collect();
    for (zxid, bytes) in &replaced {
        writer.append(*zxid, bytes.clone()).unwrap();
    }
    writer.sync().unwrap();
    drop((writer, log));

    let (_log, recovered) = open(dir.path(), small_segments());
    let snapshot = recovered.snapshot.expect("snapshot at 10 survives");
    assert_eq!(
        (snapshot.zxid, snapshot.data.as_slice()),
        (zx(10), &b"at 10"[..])
    );
    let mut want = expected(11..=12);
    want.extend(replaced);
    assert_eq!(recovered.txns, want);
    assert_eq!(recovered.last_zxid, zx(15));
}

#[test]
fn truncate_below_the_retained_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions {
        snapshots_retained: 1,
        ..small_segments()
    };
    let (log, _) = open(dir.path(), options.clone());
    let (writer, _) = start(&log);
    for n in 1..=30 {
        writer.append(zx(n), payload(n)).unwrap();
    }
    writer.sync().unwrap();
    log.write_snapshot(zx(25), |w| w.write_all(b"s")).unwrap();
    let err = writer.truncate_after(zx(2)).unwrap_err();
    assert!(
        matches!(err, LogError::TruncateBelowLog { zxid, .. } if zxid == zx(2)),
        "{err}"
    );
    // Refused, not fatal: the writer goes on.
    writer.append(zx(31), payload(31)).unwrap();
    writer.sync().unwrap();
    drop((writer, log));
    let (_log, recovered) = open(dir.path(), options);
    assert_eq!(recovered.snapshot.map(|s| s.zxid), Some(zx(25)));
    assert_eq!(recovered.txns, expected(26..=31));
}

#[test]
fn reset_restarts_the_log_after_an_installed_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), small_segments());
    let (writer, _) = start(&log);
    for n in 1..=10 {
        writer.append(zx(n), payload(n)).unwrap();
    }
    log.write_snapshot(zx(5), |w| w.write_all(b"old")).unwrap();
    log.write_snapshot(zx(100), |w| w.write_all(b"from leader"))
        .unwrap();
    writer.reset(zx(100)).unwrap();
    // The log no longer reaches back to the old snapshot, so reset removed it.
    assert_eq!(snapshot_zxids(dir.path()), vec![zx(100)]);
    for n in 101..=103 {
        writer.append(zx(n), payload(n)).unwrap();
    }
    writer.sync().unwrap();
    drop((writer, log));

    let (_log, recovered) = open(dir.path(), small_segments());
    assert_eq!(recovered.snapshot.as_ref().map(|s| s.zxid), Some(zx(100)));
    assert_eq!(recovered.txns, expected(101..=103));
    drop(_log);

    // Nothing older can stand in for the installed snapshot.
    flip_byte(
        &dir.path()
            .join("snapshot")
            .join(crate::format::snapshot_name(zx(100))),
        40,
    );
    let err = Log::open(dir.path(), small_segments()).unwrap_err();
    assert!(matches!(err, LogError::Unrecoverable { .. }), "{err}");
}

#[test]
fn writer_error_stops_appends_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), small_segments());
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    let hooks =
        WriterHooks::new(|_| {}).on_error(move |e| sink.lock().unwrap().push(e.to_string()));
    let writer = log.start_writer(hooks).unwrap();
    writer.append(zx(1), vec![0; 150]).unwrap();
    writer.sync().unwrap();
    // The next record must roll into log.<2>; a stray file there makes creation fail.
    std::fs::write(
        dir.path()
            .join("log")
            .join(crate::format::segment_name(zx(2))),
        b"x",
    )
    .unwrap();
    writer.append(zx(2), vec![0; 150]).unwrap();
    let err = writer.sync().unwrap_err();
    assert!(matches!(err, LogError::WriterStopped { .. }), "{err}");
    let err = writer.append(zx(3), vec![]).unwrap_err();
    assert!(
        matches!(&err, LogError::WriterStopped { reason } if reason.contains("create segment")),
        "{err}"
    );
    assert_eq!(errors.lock().unwrap().len(), 1);
    assert_eq!(writer.counters().durable_zxid, zx(1));
}

#[test]
fn metadata_is_written_atomically_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), LogOptions::default());
    assert_eq!(log.read_metadata("acceptedEpoch").unwrap(), None);
    log.write_metadata("acceptedEpoch", b"3").unwrap();
    log.write_metadata("acceptedEpoch", b"4").unwrap();
    assert_eq!(
        log.read_metadata("acceptedEpoch").unwrap(),
        Some(b"4".to_vec())
    );
    assert!(!dir.path().join("acceptedEpoch.tmp").exists());
    for bad in ["", "LOCK", "log", "snapshot", "../x", ".hidden", "a/b"] {
        let err = log.write_metadata(bad, b"x").unwrap_err();
        assert!(matches!(err, LogError::InvalidMetadataName(_)), "{bad:?}");
    }
}

#[test]
fn snapshots_are_written_while_appends_go_on_and_retention_purges() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions {
        snapshots_retained: 2,
        ..small_segments()
    };
    let (log, _) = open(dir.path(), options.clone());
    let log = Arc::new(log);
    let (writer, _) = start(&log);
    let snapshotter = {
        let log = log.clone();
        std::thread::spawn(move || {
            for n in [10, 20, 30, 40] {
                log.write_snapshot(zx(n), |w| {
                    for _ in 0..100 {
                        w.write_all(&[n as u8; 1000])?;
                    }
                    Ok(())
                })
                .unwrap();
            }
        })
    };
    for n in 1..=60 {
        writer.append(zx(n), payload(n)).unwrap();
    }
    snapshotter.join().unwrap();
    writer.sync().unwrap();
    log.purge().unwrap();

    let snapshots = crate::snapshot::list(&dir.path().join("snapshot")).unwrap();
    let zxids: Vec<Zxid> = snapshots.iter().map(|(z, _)| *z).collect();
    assert_eq!(zxids, vec![zx(30), zx(40)]);
    // Every remaining segment holds a record above the oldest kept snapshot, but the
    // log still reaches back to it.
    let headers = crate::segment::list_headers(&dir.path().join("log")).unwrap();
    assert!(headers[0].1.prev <= zx(30));
    assert!(headers.len() < 30, "old segments are purged");
    drop((writer, log));

    let (_log, recovered) = open(dir.path(), options);
    let snapshot = recovered.snapshot.unwrap();
    assert_eq!(snapshot.zxid, zx(40));
    assert_eq!(snapshot.data, vec![40u8; 100_000]);
    assert_eq!(recovered.txns, expected(41..=60));
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Log>();
    assert_send_sync::<LogWriter>();
    assert_send_sync::<LogError>();
}
