use super::*;
use crate::{Corruption, LogError};
use std::fs;
use std::io::Write;

#[test]
fn torn_tail_cut_at_every_offset_keeps_earlier_records() {
    let original = tempfile::tempdir().unwrap();
    write_records(original.path(), LogOptions::default(), 1..=5);
    let segment = segment_files(original.path()).remove(0);
    let (_, last_at) = record_offsets(1, 5)[4];
    let used = last_at as usize + RECORD_HEADER_LEN + payload(5).len();
    let file = fs::read(&segment).unwrap();
    // The active segment is preallocated: zeros follow the records.
    assert!(file.len() >= used && file[used..].iter().all(|&byte| byte == 0));
    let bytes = &file[..used];

    for cut in last_at..bytes.len() as u64 {
        let dir = copy_dir(original.path());
        let path = segment_files(dir.path()).remove(0);
        fs::write(&path, &bytes[..cut as usize]).unwrap();

        let (log, recovered) = open(dir.path(), LogOptions::default());
        assert_eq!(recovered.txns, expected(1..=4), "cut at {cut}");
        assert_eq!(fs::metadata(&path).unwrap().len(), last_at, "cut at {cut}");

        // Appends continue cleanly after the repaired tail.
        let (writer, _) = start(&log);
        writer.append(zx(5), b"again".to_vec()).unwrap();
        writer.sync().unwrap();
        drop((writer, log));
        let (_log, recovered) = open(dir.path(), LogOptions::default());
        assert_eq!(
            recovered.txns.last(),
            Some(&(zx(5), b"again".to_vec())),
            "cut at {cut}"
        );
    }
}

#[test]
fn garbage_in_the_last_records_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), LogOptions::default(), 1..=5);
    let path = segment_files(dir.path()).remove(0);
    let offsets = record_offsets(1, 5);
    // Damage the last two records, and leave zeros past the end as a crash can.
    flip_byte(&path, offsets[3].1 + 20);
    flip_byte(&path, offsets[4].1 + 20);
    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&[0; 100]).unwrap();
    drop(file);

    let (_log, recovered) = open(dir.path(), LogOptions::default());
    assert_eq!(recovered.txns, expected(1..=3));
    assert_eq!(fs::metadata(&path).unwrap().len(), offsets[3].1);
}

#[test]
fn torn_header_of_a_new_last_segment_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), small_segments(), 1..=12);
    let segments = segment_files(dir.path());
    let last = segments.last().unwrap();
    let first_of_last = crate::segment::read_header(last).unwrap().first;
    fs::write(last, &fs::read(last).unwrap()[..20]).unwrap();

    let (_log, recovered) = open(dir.path(), small_segments());
    assert_eq!(recovered.txns, expected(1..first_of_last.0));
    assert_eq!(segment_files(dir.path()).len(), segments.len() - 1);
}

#[test]
fn flipped_byte_in_a_middle_record_is_corruption_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), LogOptions::default(), 1..=5);
    let path = segment_files(dir.path()).remove(0);
    let (_, at) = record_offsets(1, 5)[1];
    flip_byte(&path, at + RECORD_HEADER_LEN as u64 + 3);
    let len_before = fs::metadata(&path).unwrap().len();

    let err = Log::open(dir.path(), LogOptions::default()).unwrap_err();
    match &err {
        LogError::Corrupt {
            file,
            offset,
            reason: Corruption::CrcMismatch { .. },
        } => {
            assert_eq!((file, *offset), (&path, at));
        }
        other => panic!("expected crc corruption, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()) && message.contains(&at.to_string()));
    // Nothing was cut away.
    assert_eq!(fs::metadata(&path).unwrap().len(), len_before);
}

#[test]
fn preallocated_zeros_end_a_segment_cleanly_and_appends_go_into_them() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), LogOptions::default(), 1..=5);
    let path = segment_files(dir.path()).remove(0);
    let (_, last_at) = record_offsets(1, 5)[4];
    let used = last_at + (RECORD_HEADER_LEN + payload(5).len()) as u64;
    let allocated = fs::metadata(&path).unwrap().len();
    assert!(allocated > used, "the segment was not preallocated");

    let (log, recovered) = open(dir.path(), LogOptions::default());
    assert_eq!(recovered.txns, expected(1..=5));
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        allocated,
        "zeros are not a torn tail"
    );
    let (writer, _) = start(&log);
    writer.append(zx(6), b"six".to_vec()).unwrap();
    writer.sync().unwrap();
    drop((writer, log));
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        allocated,
        "the append went into them"
    );
    let (_log, recovered) = open(dir.path(), LogOptions::default());
    assert_eq!(recovered.txns.last(), Some(&(zx(6), b"six".to_vec())));
    assert_eq!(recovered.txns.len(), 6);
}

#[test]
fn a_finished_segment_keeps_no_preallocated_space() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), small_segments(), 1..=12);
    let segments = segment_files(dir.path());
    assert!(segments.len() > 1);
    for finished in &segments[..segments.len() - 1] {
        let (info, _) =
            crate::segment::scan_file(finished, None, false, &mut |_, _, _| {}).unwrap();
        let len = fs::metadata(finished).unwrap().len();
        assert_eq!(
            len,
            info.len,
            "{} keeps space after its records",
            finished.display()
        );
    }
    let (_log, recovered) = open(dir.path(), small_segments());
    assert_eq!(recovered.txns, expected(1..=12));
}

#[test]
fn flipped_length_in_a_middle_record_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), LogOptions::default(), 1..=5);
    let path = segment_files(dir.path()).remove(0);
    let (_, at) = record_offsets(1, 5)[2];
    flip_byte(&path, at);
    let err = Log::open(dir.path(), LogOptions::default()).unwrap_err();
    assert!(
        matches!(&err, LogError::Corrupt { offset, .. } if *offset == at),
        "{err}"
    );
}

#[test]
fn damage_at_the_end_of_an_older_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), small_segments(), 1..=20);
    let first = segment_files(dir.path()).remove(0);
    let len = fs::metadata(&first).unwrap().len();
    flip_byte(&first, len - 1);
    let err = Log::open(dir.path(), small_segments()).unwrap_err();
    assert!(
        matches!(&err, LogError::Corrupt { file, .. } if *file == first),
        "{err}"
    );
}

#[test]
fn corrupt_newest_snapshot_falls_back_to_an_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let options = LogOptions {
        snapshots_retained: 2,
        ..small_segments()
    };
    let (log, _) = open(dir.path(), options.clone());
    let (writer, _) = start(&log);
    for n in 1..=40 {
        writer.append(zx(n), payload(n)).unwrap();
        if n % 10 == 0 {
            writer.sync().unwrap();
            log.write_snapshot(zx(n - 5), |w| {
                w.write_all(format!("state {}", n - 5).as_bytes())
            })
            .unwrap();
        }
    }
    writer.sync().unwrap();
    drop((writer, log));
    // Retention kept snapshots 25 and 35 and purged segments wholly at or below 25.
    assert!(
        crate::segment::list_headers(&dir.path().join("log")).unwrap()[0]
            .1
            .prev
            > zx(0)
    );

    let (log, recovered) = open(dir.path(), options.clone());
    assert_eq!(recovered.snapshot.as_ref().map(|s| s.zxid), Some(zx(35)));
    assert_eq!(recovered.txns, expected(36..=40));
    drop(log);

    let newest = dir
        .path()
        .join("snapshot")
        .join(crate::format::snapshot_name(zx(35)));
    flip_byte(&newest, 34);
    let (log, recovered) = open(dir.path(), options.clone());
    let snapshot = recovered.snapshot.expect("older snapshot");
    assert_eq!(
        (snapshot.zxid, snapshot.data),
        (zx(25), b"state 25".to_vec())
    );
    assert_eq!(recovered.txns, expected(26..=40));
    assert_eq!(recovered.last_zxid, zx(40));
    drop(log);

    // With both snapshots bad the purged log cannot rebuild the state.
    let older = dir
        .path()
        .join("snapshot")
        .join(crate::format::snapshot_name(zx(25)));
    fs::write(&older, b"short").unwrap();
    let err = Log::open(dir.path(), options).unwrap_err();
    assert!(matches!(err, LogError::Unrecoverable { .. }), "{err}");
}

#[test]
fn corrupt_only_snapshot_replays_a_complete_log() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = open(dir.path(), LogOptions::default());
    let (writer, _) = start(&log);
    for n in 1..=10 {
        writer.append(zx(n), payload(n)).unwrap();
    }
    writer.sync().unwrap();
    let path = log.write_snapshot(zx(10), |w| w.write_all(b"abc")).unwrap();
    drop((writer, log));
    fs::write(&path, b"").unwrap();
    let (_log, recovered) = open(dir.path(), LogOptions::default());
    assert!(recovered.snapshot.is_none());
    assert_eq!(recovered.txns, expected(1..=10));
}

#[test]
fn interrupted_snapshot_write_is_ignored_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    write_records(dir.path(), LogOptions::default(), 1..=3);
    let tmp = dir
        .path()
        .join("snapshot")
        .join("snapshot.0000000000000003.tmp");
    fs::write(&tmp, b"partial").unwrap();
    let (_log, recovered) = open(dir.path(), LogOptions::default());
    assert!(recovered.snapshot.is_none());
    assert_eq!(recovered.txns, expected(1..=3));
    assert!(!tmp.exists());
}

#[test]
fn empty_dir_recovers_to_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, recovered) = open(&dir.path().join("new"), LogOptions::default());
    assert!(recovered.snapshot.is_none() && recovered.txns.is_empty());
    assert_eq!(recovered.last_zxid, Zxid::ZERO);
}
