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
