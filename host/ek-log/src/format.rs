//! The on-disk byte layout: segment headers, record frames, snapshot header and trailer,
//! and file names. All integers are little-endian.
//!
//! Nothing here touches the file system, so every decoder can be fed hostile bytes.

use crate::error::Corruption;
use ek_types::Zxid;

/// First bytes of every log segment.
pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"EKTXNLOG";
/// First bytes of every snapshot file.
pub(crate) const SNAPSHOT_MAGIC: [u8; 8] = *b"EKSNAPSH";
/// Last bytes of every complete snapshot file.
pub(crate) const SNAPSHOT_END_MAGIC: [u8; 4] = *b"EKSE";
/// The only format version this crate writes and reads, for segments and snapshots.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Segment header: magic (8) | version u32 | reserved u32 | first zxid i64 |
/// prev zxid i64 | crc32c of the preceding 32 bytes u32 | reserved u32.
pub(crate) const SEGMENT_HEADER_LEN: usize = 40;
/// Record frame before the payload: len u32 | crc32c u32 | zxid i64.
pub(crate) const RECORD_HEADER_LEN: usize = 16;
/// Largest payload a record may carry. Bigger lengths on disk are corruption.
pub const RECORD_PAYLOAD_MAX: usize = 64 << 20;

/// Snapshot header: magic (8) | version u32 | reserved u32 | zxid i64 |
/// crc32c of the preceding 24 bytes u32 | reserved u32.
pub(crate) const SNAPSHOT_HEADER_LEN: usize = 32;
/// Snapshot trailer: body len u64 | body crc32c u32 | end magic (4).
pub(crate) const SNAPSHOT_TRAILER_LEN: usize = 16;

/// The decoded header of a log segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// Zxid of the first record; also in the file name.
    pub(crate) first: Zxid,
    /// Zxid of the record that precedes this segment in the log's history (the last
    /// record of the previous segment), or the snapshot zxid the log restarted from,
    /// or [`Zxid::ZERO`] for a log that starts at the beginning of history.
    pub(crate) prev: Zxid,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..8].copy_from_slice(&SEGMENT_MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[16..24].copy_from_slice(&self.first.0.to_le_bytes());
        out[24..32].copy_from_slice(&self.prev.0.to_le_bytes());
        let crc = crc32c::crc32c(&out[0..32]);
        out[32..36].copy_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<SegmentHeader, Corruption> {
        let Some(header) = bytes.get(..SEGMENT_HEADER_LEN) else {
            return Err(Corruption::TruncatedHeader {
                len: bytes.len() as u64,
            });
        };
        if header[0..8] != SEGMENT_MAGIC {
            return Err(Corruption::BadMagic);
        }
        let crc_stored = le_u32(&header[32..36]);
        let crc_computed = crc32c::crc32c(&header[0..32]);
        if crc_stored != crc_computed {
            return Err(Corruption::HeaderCrcMismatch);
        }
        let version = le_u32(&header[8..12]);
        if version != FORMAT_VERSION {
            return Err(Corruption::UnsupportedVersion(version));
        }
        let first = Zxid(le_i64(&header[16..24]));
        let prev = Zxid(le_i64(&header[24..32]));
        if prev >= first {
            return Err(Corruption::ZxidNotIncreasing { zxid: first, prev });
        }
        Ok(SegmentHeader { first, prev })
    }
}

/// Appends one framed record to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, zxid: Zxid, payload: &[u8]) {
    let zxid_bytes = zxid.0.to_le_bytes();
    let mut crc = crc32c::crc32c(&zxid_bytes);
    crc = crc32c::crc32c_append(crc, payload);
    // The caller bounds payloads by RECORD_PAYLOAD_MAX, far below u32::MAX.
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&zxid_bytes);
    out.extend_from_slice(payload);
}

/// The size on disk of a record carrying `payload_len` bytes.
pub(crate) fn record_len(payload_len: usize) -> usize {
    RECORD_HEADER_LEN + payload_len
}

/// One decoded record, borrowing its payload from the segment bytes.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub(crate) zxid: Zxid,
    pub(crate) payload: &'a [u8],
    /// Offset just past this record.
    pub(crate) end: usize,
}

/// Decodes the record at `offset`; `Ok(None)` at a clean end of the bytes.
pub(crate) fn decode_record(bytes: &[u8], offset: usize) -> Result<Option<Frame<'_>>, Corruption> {
    let rest = bytes.get(offset..).unwrap_or(&[]);
    if rest.is_empty() {
        return Ok(None);
    }
    if rest.len() < RECORD_HEADER_LEN {
        return Err(Corruption::TruncatedRecord);
    }
    let len = le_u32(&rest[0..4]) as usize;
    if len > RECORD_PAYLOAD_MAX {
        return Err(Corruption::RecordTooLarge(len as u64));
    }
    let Some(body) = rest.get(8..RECORD_HEADER_LEN + len) else {
        return Err(Corruption::TruncatedRecord);
    };
    let crc_stored = le_u32(&rest[4..8]);
    let crc_computed = crc32c::crc32c(body);
    if crc_stored != crc_computed {
        return Err(Corruption::CrcMismatch {
            stored: crc_stored,
            computed: crc_computed,
        });
    }
    Ok(Some(Frame {
        zxid: Zxid(le_i64(&body[0..8])),
        payload: &body[8..],
        end: offset + RECORD_HEADER_LEN + len,
    }))
}

/// Whether any position at or after `from` holds a complete record with a valid crc and
/// a zxid above `after`. Used to tell a torn tail (nothing valid follows) from
/// corruption in the middle of the log.
pub(crate) fn valid_record_follows(bytes: &[u8], from: usize, after: Zxid) -> bool {
    (from..bytes.len())
        .any(|offset| matches!(decode_record(bytes, offset), Ok(Some(frame)) if frame.zxid > after))
}

/// Encodes a snapshot header.
pub(crate) fn encode_snapshot_header(zxid: Zxid) -> [u8; SNAPSHOT_HEADER_LEN] {
    let mut out = [0u8; SNAPSHOT_HEADER_LEN];
    out[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&zxid.0.to_le_bytes());
    let crc = crc32c::crc32c(&out[0..24]);
    out[24..28].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Encodes a snapshot trailer for a body of `len` bytes with crc32c `crc`.
pub(crate) fn encode_snapshot_trailer(len: u64, crc: u32) -> [u8; SNAPSHOT_TRAILER_LEN] {
    let mut out = [0u8; SNAPSHOT_TRAILER_LEN];
    out[0..8].copy_from_slice(&len.to_le_bytes());
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    out[12..16].copy_from_slice(&SNAPSHOT_END_MAGIC);
    out
}

/// Checks a whole snapshot file and returns its zxid and body; the error carries the
/// offset of the bad part.
pub(crate) fn decode_snapshot(bytes: &[u8]) -> Result<(Zxid, &[u8]), (u64, Corruption)> {
    if bytes.len() < SNAPSHOT_HEADER_LEN + SNAPSHOT_TRAILER_LEN {
        let len = bytes.len() as u64;
        return Err((0, Corruption::TruncatedHeader { len }));
    }
    if bytes[0..8] != SNAPSHOT_MAGIC {
        return Err((0, Corruption::BadMagic));
    }
    if le_u32(&bytes[24..28]) != crc32c::crc32c(&bytes[0..24]) {
        return Err((0, Corruption::HeaderCrcMismatch));
    }
    let version = le_u32(&bytes[8..12]);
    if version != FORMAT_VERSION {
        return Err((0, Corruption::UnsupportedVersion(version)));
    }
    let zxid = Zxid(le_i64(&bytes[16..24]));
    let trailer_at = bytes.len() - SNAPSHOT_TRAILER_LEN;
    let trailer = &bytes[trailer_at..];
    let offset = trailer_at as u64;
    if trailer[12..16] != SNAPSHOT_END_MAGIC {
        return Err((offset, Corruption::BadMagic));
    }
    let body = &bytes[SNAPSHOT_HEADER_LEN..trailer_at];
    let len_stored = le_u64(&trailer[0..8]);
    if len_stored != body.len() as u64 {
        let actual = body.len() as u64;
        return Err((
            offset,
            Corruption::LengthMismatch {
                stored: len_stored,
                actual,
            },
        ));
    }
    let crc_stored = le_u32(&trailer[8..12]);
    let crc_computed = crc32c::crc32c(body);
    if crc_stored != crc_computed {
        let computed = crc_computed;
        return Err((
            offset,
            Corruption::CrcMismatch {
                stored: crc_stored,
                computed,
            },
        ));
    }
    Ok((zxid, body))
}

/// `log.<zxid as 16 hex digits>`.
pub(crate) fn segment_name(first: Zxid) -> String {
    format!("log.{:016x}", first.0 as u64)
}

/// `snapshot.<zxid as 16 hex digits>`.
pub(crate) fn snapshot_name(zxid: Zxid) -> String {
    format!("snapshot.{:016x}", zxid.0 as u64)
}

/// Parses `<prefix>.<16 hex digits>`; anything else (temp files, strays) is `None`.
pub(crate) fn parse_name(name: &str, prefix: &str) -> Option<Zxid> {
    let hex = name.strip_prefix(prefix)?.strip_prefix('.')?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|v| Zxid(v as i64))
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut buf = [0u8; 4];
    buf.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(buf)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(buf)
}

fn le_i64(bytes: &[u8]) -> i64 {
    le_u64(bytes) as i64
}
