//! Installing a snapshot from the leader (`write_snapshot(z)` then `reset(z)`) and
//! crashing at every point of it; snapshots off the log's chain.
//!
//! The old log holds even zxids, so an odd `z` is a snapshot of another history that the
//! old log does not continue, and an even one is a snapshot the old log continues.

use super::*;
use crate::LogError;
use std::fs;

/// Appends the old history: the even zxids `2..=2 * count`.
fn old_history(dir: &Path, options: LogOptions, count: i64) {
    write_records(dir, options, (1..=count).map(|n| 2 * n));
}

fn evens(from: i64, to: i64) -> Vec<(Zxid, Vec<u8>)> {
    expected((from..=to).filter(|n| n % 2 == 0))
}

/// The first step of an install, then a crash: the process dies before `reset`.
fn write_snapshot_then_crash(dir: &Path, options: LogOptions, zxid: i64, body: &[u8]) {
    let (log, _) = open(dir, options);
    let (writer, _) = start(&log);
    log.write_snapshot(zx(zxid), |w| w.write_all(body)).unwrap();
    drop((writer, log));
}

/// Opens `dir`, returning the log, what it recovered, and its warnings.
fn reopen(dir: &Path, options: LogOptions) -> (Log, Recovered, Vec<String>) {
    let ((log, recovered), warnings) = capture_warnings(|| open(dir, options));
    (log, recovered, warnings)
}

fn snapshot_of(recovered: &Recovered) -> Option<(Zxid, &[u8])> {
    let snapshot = recovered.snapshot.as_ref()?;
    Some((snapshot.zxid, snapshot.data.as_slice()))
}

/// Starts the writer, appends `zxids` with payload `"new <n>"` and closes the log.
fn append_new(log: Log, zxids: impl IntoIterator<Item = i64>) -> Vec<(Zxid, Vec<u8>)> {
    let (writer, _) = start(&log);
    append_with(writer, zxids)
}

/// Appends `zxids` with payload `"new <n>"`, syncs and closes the writer.
fn append_with(writer: LogWriter, zxids: impl IntoIterator<Item = i64>) -> Vec<(Zxid, Vec<u8>)> {
    let mut appended = Vec::new();
    for n in zxids {
        let bytes = format!("new {n}").into_bytes();
        writer.append(zx(n), bytes.clone()).unwrap();
        appended.push((zx(n), bytes));
    }
    writer.sync().unwrap();
    appended
}

#[test]
fn crash_before_reset_discards_a_divergent_old_log() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments();
    old_history(dir.path(), options.clone(), 30);
    let (log, _) = open(dir.path(), options.clone());
    log.write_snapshot(zx(10), |w| w.write_all(b"old 10"))
        .unwrap();
    drop(log);
    write_snapshot_then_crash(dir.path(), options.clone(), 21, b"new 21");

    let (log, recovered, warnings) = reopen(dir.path(), options.clone());
    assert_eq!(snapshot_of(&recovered), Some((zx(21), &b"new 21"[..])));
    assert!(recovered.txns.is_empty());
    assert_eq!(recovered.last_zxid, zx(21));
    let file = crate::format::snapshot_name(zx(21));
    assert!(
        warnings.iter().any(|w| w.contains(
            "completing an interrupted snapshot install: discarding 20 logged txns above \
             zxid 0x15 that do not continue it"
        ) && w.contains(&file)),
        "{warnings:#?}"
    );
    // The old log and the old history's snapshot are gone, durably.
    assert!(segment_files(dir.path()).is_empty());
    assert_eq!(snapshot_zxids(dir.path()), vec![zx(21)]);

    // The writer continues after 21, exactly as after reset(21).
    let (writer, _) = start(&log);
    assert!(matches!(
        writer.append(zx(21), vec![]),
        Err(LogError::NotIncreasing { .. })
    ));
    let appended = append_with(writer, [22, 23]);
    drop(log);
    for _ in 0..2 {
        let (_log, recovered, warnings) = reopen(dir.path(), options.clone());
        assert_eq!(snapshot_of(&recovered), Some((zx(21), &b"new 21"[..])));
        assert_eq!(recovered.txns, appended);
        assert_eq!(recovered.last_zxid, zx(23));
        assert!(warnings.is_empty(), "{warnings:#?}");
    }
}

#[test]
fn crash_before_reset_keeps_an_old_log_that_continues_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments();
    old_history(dir.path(), options.clone(), 30);
    // Zxid 20 is in the old log, so the old log holds the history that led to it.
    write_snapshot_then_crash(dir.path(), options.clone(), 20, b"new 20");

    let (log, recovered, warnings) = reopen(dir.path(), options.clone());
    assert_eq!(snapshot_of(&recovered), Some((zx(20), &b"new 20"[..])));
    assert_eq!(recovered.txns, evens(22, 60));
    assert!(warnings.is_empty(), "{warnings:#?}");

    // Retrying the install finishes it.
    let (writer, _) = start(&log);
    writer.reset(zx(20)).unwrap();
    let appended = append_with(writer, [21]);
    drop(log);
    let (_log, recovered, _) = reopen(dir.path(), options);
    assert_eq!(snapshot_of(&recovered), Some((zx(20), &b"new 20"[..])));
    assert_eq!(recovered.txns, appended);
}

#[test]
fn crash_before_reset_with_the_snapshot_past_the_old_log() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments();
    old_history(dir.path(), options.clone(), 10);
    write_snapshot_then_crash(dir.path(), options.clone(), 101, b"new 101");

    let (log, recovered, warnings) = reopen(dir.path(), options.clone());
    assert_eq!(snapshot_of(&recovered), Some((zx(101), &b"new 101"[..])));
    assert!(recovered.txns.is_empty());
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("past the txn log's last record 0x14")),
        "{warnings:#?}"
    );
    assert!(segment_files(dir.path()).is_empty());
    let appended = append_new(log, [102]);
    let (_log, recovered, _) = reopen(dir.path(), options);
    assert_eq!(recovered.txns, appended);
}

#[test]
fn install_below_newer_snapshots_of_the_old_history() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions {
        snapshots_retained: 1,
        ..small_segments()
    };
    old_history(dir.path(), options.clone(), 30);
    let (log, _) = open(dir.path(), options.clone());
    log.write_snapshot(zx(40), |w| w.write_all(b"old 40"))
        .unwrap();
    let (writer, _) = start(&log);
    let log_start = crate::segment::list_headers(&dir.path().join("log")).unwrap()[0]
        .1
        .prev;
    assert!(log_start > zx(3), "retention purged the old log's start");

    // Retention waits: with one snapshot retained it would remove the new one.
    log.write_snapshot(zx(3), |w| w.write_all(b"new 3"))
        .unwrap();
    assert_eq!(snapshot_zxids(dir.path()), vec![zx(3), zx(40)]);
    writer.sync().unwrap();

    // A crash now recovers the old history; the stray new snapshot is removed so that
    // it can never be taken for the newest one later.
    let crashed = copy_dir(dir.path());
    let (_log, recovered, warnings) = reopen(crashed.path(), options.clone());
    assert_eq!(snapshot_of(&recovered), Some((zx(40), &b"old 40"[..])));
    assert_eq!(recovered.txns, evens(42, 60));
    assert_eq!(snapshot_zxids(crashed.path()), vec![zx(40)]);
    assert!(
        warnings.iter().any(|w| w.contains("removing a snapshot")),
        "{warnings:#?}"
    );

    // A crash after reset removed the newer snapshots (its first step) completes the
    // install, although the old log starts above the snapshot.
    let crashed = copy_dir(dir.path());
    fs::remove_file(
        crashed
            .path()
            .join("snapshot")
            .join(crate::format::snapshot_name(zx(40))),
    )
    .unwrap();
    let (_log, recovered, warnings) = reopen(crashed.path(), options.clone());
    assert_eq!(snapshot_of(&recovered), Some((zx(3), &b"new 3"[..])));
    assert!(recovered.txns.is_empty());
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("completing an interrupted snapshot install")),
        "{warnings:#?}"
    );

    // Without a crash, reset finishes the install and leaves only the new snapshot.
    writer.reset(zx(3)).unwrap();
    assert_eq!(snapshot_zxids(dir.path()), vec![zx(3)]);
    let appended = append_with(writer, [4, 5]);
    drop(log);
    let (_log, recovered, _) = reopen(dir.path(), options);
    assert_eq!(snapshot_of(&recovered), Some((zx(3), &b"new 3"[..])));
    assert_eq!(recovered.txns, appended);
}

/// Crashes after `write_snapshot(z)`, after reset's removal of newer snapshots, and after
/// each of its segment removals; checks the recovered state and that appending goes on.
fn crash_at_every_step_of_reset(z: i64) {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments();
    old_history(dir.path(), options.clone(), 30);
    let (log, _) = open(dir.path(), options.clone());
    // A snapshot at 2 keeps retention from purging the old log's start.
    for (n, body) in [(2, "old 2"), (50, "old 50")] {
        log.write_snapshot(zx(n), |w| w.write_all(body.as_bytes()))
            .unwrap();
    }
    drop(log);
    write_snapshot_then_crash(dir.path(), options.clone(), z, b"new");
    let log_dir = dir.path().join("log");
    let firsts: Vec<i64> = crate::segment::list_headers(&log_dir)
        .unwrap()
        .iter()
        .map(|(_, header)| header.first.0)
        .collect();
    assert!(firsts.len() > 3 && firsts[0] == 2);

    for crash in 0..=firsts.len() + 1 {
        let crashed = copy_dir(dir.path());
        if crash >= 1 {
            let name = crate::format::snapshot_name(zx(50));
            fs::remove_file(crashed.path().join("snapshot").join(name)).unwrap();
        }
        let removed = crash.saturating_sub(1);
        for path in segment_files(crashed.path()).iter().rev().take(removed) {
            fs::remove_file(path).unwrap();
        }
        let kept = firsts.len() - removed;
        let log_last = firsts.get(kept).map_or(60, |first| first - 2);
        let (zxid, data, txns) = if crash == 0 {
            // The newer snapshot of the old history wins: the whole old history.
            (zx(50), &b"old 50"[..], evens(52, 60))
        } else if z % 2 == 0 && z <= log_last {
            // The old log (a prefix of it) holds z, so it continues the snapshot.
            (zx(z), &b"new"[..], evens(z + 1, log_last))
        } else {
            (zx(z), &b"new"[..], Vec::new())
        };
        let (log, recovered, _) = reopen(crashed.path(), options.clone());
        assert_eq!(snapshot_of(&recovered), Some((zxid, data)), "crash {crash}");
        assert_eq!(recovered.txns, txns, "crash {crash}");
        let next = recovered.last_zxid.0 + 1;
        let mut all = txns;
        all.extend(append_new(log, [next]));
        let (_log, again, warnings) = reopen(crashed.path(), options.clone());
        assert_eq!(snapshot_of(&again), Some((zxid, data)), "crash {crash}");
        assert_eq!(again.txns, all, "crash {crash}");
        assert!(warnings.is_empty(), "crash {crash}: {warnings:#?}");
    }
}

#[test]
fn crash_at_every_step_of_reset_with_a_divergent_old_log() {
    crash_at_every_step_of_reset(21);
}

#[test]
fn crash_at_every_step_of_reset_with_an_old_log_that_continues_the_snapshot() {
    crash_at_every_step_of_reset(20);
}

#[test]
fn reset_without_a_snapshot_is_refused_and_zero_needs_none() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), LogOptions::default());
    let (writer, _) = start(&log);
    for n in 1..=5 {
        writer.append(zx(n), payload(n)).unwrap();
    }
    log.write_snapshot(zx(3), |w| w.write_all(b"at 3")).unwrap();
    let err = writer.reset(zx(50)).unwrap_err();
    assert!(
        matches!(err, LogError::ResetWithoutSnapshot { zxid } if zxid == zx(50)),
        "{err}"
    );
    // Refused, not fatal, and nothing changed.
    writer.append(zx(6), payload(6)).unwrap();
    writer.sync().unwrap();
    assert_eq!(snapshot_zxids(dir.path()), vec![zx(3)]);

    // A log restarted after zero replays from the empty state and needs no snapshot.
    writer.reset(Zxid::ZERO).unwrap();
    assert!(snapshot_zxids(dir.path()).is_empty());
    let appended = append_with(writer, [1, 2]);
    drop(log);
    let (_log, recovered, _) = reopen(dir.path(), LogOptions::default());
    assert!(recovered.snapshot.is_none());
    assert_eq!(recovered.txns, appended);
}

#[test]
fn snapshot_past_a_torn_tail_restarts_the_log_after_it() {
    // A learner may apply a committed txn before its own log made it durable, snapshot
    // it, and lose the log's tail in a crash.
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), LogOptions::default());
    let (writer, _) = start(&log);
    for n in 1..=10 {
        writer.append(zx(n), payload(n)).unwrap();
    }
    writer.sync().unwrap();
    log.write_snapshot(zx(5), |w| w.write_all(b"at 5")).unwrap();
    log.write_snapshot(zx(10), |w| w.write_all(b"at 10"))
        .unwrap();
    drop((writer, log));
    let segment = segment_files(dir.path()).remove(0);
    let (_, torn_at) = record_offsets(1, 10)[7];
    let bytes = fs::read(&segment).unwrap();
    fs::write(&segment, &bytes[..torn_at as usize + 5]).unwrap();

    let (log, recovered, warnings) = reopen(dir.path(), LogOptions::default());
    assert_eq!(snapshot_of(&recovered), Some((zx(10), &b"at 10"[..])));
    assert!(recovered.txns.is_empty());
    assert_eq!(recovered.last_zxid, zx(10));
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("past the txn log's last record 0x7")),
        "{warnings:#?}"
    );
    // The snapshot at 5 needs the discarded log, so it went too.
    assert_eq!(snapshot_zxids(dir.path()), vec![zx(10)]);
    let appended = append_new(log, [11, 12, 13]);
    let (_log, recovered, warnings) = reopen(dir.path(), LogOptions::default());
    assert_eq!(snapshot_of(&recovered), Some((zx(10), &b"at 10"[..])));
    assert_eq!(recovered.txns, appended);
    assert!(warnings.is_empty(), "{warnings:#?}");
}

#[test]
fn crash_during_truncate_keeps_the_old_history() {
    // truncate_after(12) removes the snapshots above 12 before cutting the log; a crash
    // in between leaves the whole old log and the snapshots it continues.
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
    drop((writer, log));
    let name = crate::format::snapshot_name(zx(20));
    fs::remove_file(dir.path().join("snapshot").join(name)).unwrap();

    let (log, recovered, warnings) = reopen(dir.path(), small_segments());
    assert_eq!(snapshot_of(&recovered), Some((zx(10), &b"at 10"[..])));
    assert_eq!(recovered.txns, expected(11..=30));
    assert!(warnings.is_empty(), "{warnings:#?}");

    // Retried, the truncation completes.
    let (writer, _) = start(&log);
    writer.truncate_after(zx(12)).unwrap();
    drop((writer, log));
    let (_log, recovered, _) = reopen(dir.path(), small_segments());
    assert_eq!(recovered.txns, expected(11..=12));
}

#[test]
fn fallback_skips_snapshots_off_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    old_history(dir.path(), LogOptions::default(), 20);
    let (log, _) = open(dir.path(), LogOptions::default());
    for (n, body) in [(10, "old 10"), (21, "stray 21"), (30, "old 30")] {
        log.write_snapshot(zx(n), |w| w.write_all(body.as_bytes()))
            .unwrap();
    }
    drop(log);
    flip_byte(
        &dir.path()
            .join("snapshot")
            .join(crate::format::snapshot_name(zx(30))),
        34,
    );

    let (_log, recovered, _) = reopen(dir.path(), LogOptions::default());
    assert_eq!(snapshot_of(&recovered), Some((zx(10), &b"old 10"[..])));
    assert_eq!(recovered.txns, evens(12, 40));
    // The stray is removed; the corrupt snapshot the log continues is left alone.
    assert_eq!(snapshot_zxids(dir.path()), vec![zx(10), zx(30)]);
}
