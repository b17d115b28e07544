//! Random append / crash-cut rounds against a model of what must survive.

use super::*;
use proptest::prelude::*;
use std::fs;

/// One round: append records, sync, then "crash" by cutting the last segment at a
/// fraction of its length and maybe leaving zeros after the cut.
#[derive(Debug, Clone)]
struct Round {
    payload_lens: Vec<usize>,
    cut_permille: u32,
    zeros: usize,
}

fn round() -> impl Strategy<Value = Round> {
    (
        prop::collection::vec(0usize..90, 0..12),
        0u32..=1000,
        prop_oneof![Just(0usize), 1usize..64],
    )
        .prop_map(|(payload_lens, cut_permille, zeros)| Round {
            payload_lens,
            cut_permille,
            zeros,
        })
}

/// Record bytes of the last segment in the model: which model entries it holds.
fn last_segment_entries(model: &[(Zxid, Vec<u8>)], first: Zxid) -> Vec<(Zxid, u64)> {
    let mut offset = SEGMENT_HEADER_LEN as u64;
    model
        .iter()
        .filter(|(zxid, _)| *zxid >= first)
        .map(|(zxid, payload)| {
            let at = offset;
            offset += (RECORD_HEADER_LEN + payload.len()) as u64;
            (*zxid, at + (RECORD_HEADER_LEN + payload.len()) as u64)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn crash_cuts_lose_only_the_cut_records(rounds in prop::collection::vec(round(), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let options = LogOptions { segment_bytes_max: 300, ..LogOptions::default() };
        let mut model: Vec<(Zxid, Vec<u8>)> = Vec::new();
        let mut next = 1i64;
        for round in rounds {
            let (log, recovered) = open(dir.path(), options.clone());
            prop_assert_eq!(&recovered.txns, &model);
            let (writer, _) = start(&log);
            for len in &round.payload_lens {
                let bytes = vec![next as u8; *len];
                writer.append(zx(next), bytes.clone()).unwrap();
                model.push((zx(next), bytes));
                next += 1;
            }
            writer.sync().unwrap();
            drop((writer, log));

            let Some(last) = segment_files(dir.path()).pop() else { continue };
            let first = crate::segment::read_header(&last).unwrap().first;
            let bytes = fs::read(&last).unwrap();
            let cut = (bytes.len() as u64 * round.cut_permille as u64 / 1000) as usize;
            let mut torn = bytes[..cut].to_vec();
            // Records are written only after the header is fsynced, so zeros can follow
            // a cut in the records but never a torn header.
            if cut >= SEGMENT_HEADER_LEN {
                torn.extend(std::iter::repeat_n(0u8, round.zeros));
            }
            fs::write(&last, &torn).unwrap();
            // Records of the last segment survive iff the file still holds them byte for
            // byte (and everything before them): usually those ending at or before the cut,
            // but zeros written after a cut can recreate a record whose tail was zeros (an
            // empty payload ends in the zxid's zero high bytes), and then it is intact.
            let intact = |end: u64| {
                let end = end as usize;
                end <= torn.len() && torn[..end] == bytes[..end]
            };
            let lost: Vec<Zxid> = last_segment_entries(&model, first)
                .into_iter()
                .filter(|(_, end)| !intact(*end))
                .map(|(zxid, _)| zxid)
                .collect();
            model.retain(|(zxid, _)| !lost.contains(zxid));
            // Lost zxids may be reused: appends continue above the survivors.
            next = model.last().map_or(1, |(z, _)| z.0 + 1);
        }
        let (_log, recovered) = open(dir.path(), options);
        prop_assert_eq!(recovered.txns, model);
    }
}

/// A snapshot install (`write_snapshot(z)`, then `reset(z)`) over a random old history,
/// interrupted at a random step.
#[derive(Debug, Clone)]
struct Install {
    /// Payload lengths of the old history's records, at the even zxids 2, 4, ….
    payload_lens: Vec<usize>,
    /// Old records that local snapshots were taken at (indexes, modulo the length).
    locals: Vec<usize>,
    /// Picks the installed snapshot's zxid: an old record, or an odd zxid the old log
    /// does not hold (below, inside or past it).
    z_pick: usize,
    z_on_record: bool,
    /// 0: crash after `write_snapshot`; 1: after reset removed the newer snapshots;
    /// 1 + k: after it removed the k newest segments; past that: no crash.
    crash: usize,
}

fn install() -> impl Strategy<Value = Install> {
    (
        prop::collection::vec(0usize..60, 1..30),
        prop::collection::vec(any::<usize>(), 0..4),
        any::<usize>(),
        any::<bool>(),
        any::<usize>(),
    )
        .prop_map(
            |(payload_lens, locals, z_pick, z_on_record, crash)| Install {
                payload_lens,
                locals,
                z_pick,
                z_on_record,
                crash,
            },
        )
}

/// Writes the old history and its local snapshots; returns the records and snapshots.
fn write_old_history(dir: &Path, options: &LogOptions, case: &Install) -> History {
    let records: Vec<(Zxid, Vec<u8>)> = case
        .payload_lens
        .iter()
        .enumerate()
        .map(|(i, len)| (zx(2 * (i as i64 + 1)), vec![i as u8; *len]))
        .collect();
    let mut locals: Vec<Zxid> = case
        .locals
        .iter()
        .map(|i| records[i % records.len()].0)
        .collect();
    locals.sort();
    locals.dedup();
    let (log, _) = open(dir, options.clone());
    let (writer, _) = start(&log);
    for (zxid, bytes) in &records {
        writer.append(*zxid, bytes.clone()).unwrap();
    }
    writer.sync().unwrap();
    for zxid in &locals {
        let body = format!("old {}", zxid.0).into_bytes();
        log.write_snapshot(*zxid, |w| w.write_all(&body)).unwrap();
    }
    History { records, locals }
}

struct History {
    records: Vec<(Zxid, Vec<u8>)>,
    locals: Vec<Zxid>,
}

impl History {
    fn above(&self, from: Zxid, to: Zxid) -> Vec<(Zxid, Vec<u8>)> {
        let within = |zxid: &Zxid| *zxid > from && *zxid <= to;
        self.records
            .iter()
            .filter(|(z, _)| within(z))
            .cloned()
            .collect()
    }

    fn last(&self) -> Zxid {
        self.records.last().map_or(Zxid::ZERO, |(zxid, _)| *zxid)
    }
}

/// Does the install's first step, then the steps of `reset` the crash point allows, by
/// hand in reset's order (or the real `reset` when there is no crash). Returns the crash
/// point reduced to the steps there are, and whether the install finished.
fn install_and_crash(dir: &Path, options: &LogOptions, z: Zxid, crash: usize) -> (usize, bool) {
    let (log, _) = open(dir, options.clone());
    let (writer, _) = start(&log);
    log.write_snapshot(z, |w| w.write_all(b"new")).unwrap();
    let segments = segment_files(dir).len();
    let crash = crash % (segments + 3);
    if crash == segments + 2 {
        writer.reset(z).unwrap();
    }
    drop((writer, log));
    if (1..=segments + 1).contains(&crash) {
        for (zxid, path) in crate::snapshot::list(&dir.join("snapshot")).unwrap() {
            if zxid > z {
                fs::remove_file(path).unwrap();
            }
        }
        for path in segment_files(dir).iter().rev().take(crash - 1) {
            fs::remove_file(path).unwrap();
        }
    }
    (crash, crash == segments + 2)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever step of an install a crash hits, recovery yields either the installed
    /// snapshot (with, only if the old log holds z, a run of old records right above it)
    /// or the old history whole; and the log goes on from there across reopens.
    #[test]
    fn interrupted_install_recovers_the_old_or_the_new_state(case in install()) {
        let dir = tempfile::tempdir().unwrap();
        let options = LogOptions {
            segment_bytes_max: 250,
            snapshots_retained: 2,
            ..LogOptions::default()
        };
        let old = write_old_history(dir.path(), &options, &case);
        let count = old.records.len();
        let z = if case.z_on_record {
            old.records[case.z_pick % count].0
        } else {
            zx(2 * (case.z_pick % (count + 3)) as i64 + 1)
        };
        let (crash, finished) = install_and_crash(dir.path(), &options, z, case.crash);

        let (log, recovered) = open(dir.path(), options.clone());
        let snapshot = recovered.snapshot.as_ref().expect("a snapshot is always usable");
        let (snap_zxid, snap_data) = (snapshot.zxid, snapshot.data.clone());
        if snap_data == b"new" {
            prop_assert_eq!(snap_zxid, z);
            prop_assert!(crash > 0 || !old.locals.iter().any(|s| *s > z));
            if let Some((last, _)) = recovered.txns.last() {
                prop_assert!(case.z_on_record && !finished);
                prop_assert_eq!(&recovered.txns, &old.above(z, *last));
                if crash <= 1 {
                    prop_assert_eq!(*last, old.last());
                }
            }
        } else {
            // Only a newer snapshot of the old history beats z, and only before reset.
            prop_assert_eq!(crash, 0);
            prop_assert!(snap_zxid > z && old.locals.contains(&snap_zxid));
            prop_assert_eq!(snap_data.clone(), format!("old {}", snap_zxid.0).into_bytes());
            prop_assert_eq!(&recovered.txns, &old.above(snap_zxid, old.last()));
        }

        let next = zx(recovered.last_zxid.0 + 1);
        let (writer, _) = start(&log);
        writer.append(next, b"after".to_vec()).unwrap();
        writer.sync().unwrap();
        drop((writer, log));
        let mut want = recovered.txns.clone();
        want.push((next, b"after".to_vec()));
        for _ in 0..2 {
            let (_log, again) = open(dir.path(), options.clone());
            let snapshot = again.snapshot.as_ref().expect("still usable");
            prop_assert_eq!((snapshot.zxid, &snapshot.data), (snap_zxid, &snap_data));
            prop_assert_eq!(&again.txns, &want);
        }
    }
}
