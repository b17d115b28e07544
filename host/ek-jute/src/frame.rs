use crate::FrameError;
use bytes::{Buf, BytesMut};

/// ZooKeeper's default `jute.maxbuffer`: the largest payload a frame may announce.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 0xfffff;

/// Splits a byte stream into frames: a big-endian `int32` length, then that many bytes.
///
/// Feed it the connection's read buffer after each read; it returns one payload per call
/// and leaves any partial frame in the buffer. Check [`four_letter_word`] on the first four
/// bytes of a connection before using it: a word such as `ruok` reads as a huge length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameDecoder {
    /// The largest payload accepted, in bytes.
    pub max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder refusing payloads longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> FrameDecoder {
        FrameDecoder { max_frame_bytes }
    }

    /// Takes the next complete frame off the front of `buf` and returns its payload (length
    /// prefix stripped), or `None` when more bytes are needed. A refused length prefix is
    /// an error, and `buf` is left as it was: the caller closes the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let len = usize::try_from(len).map_err(|_| FrameError::Negative(len))?;
        if len > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame_bytes,
            });
        }
        let frame_len = len + 4;
        if buf.len() < frame_len {
            buf.reserve(frame_len - buf.len());
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(len)))
    }
}

/// A four-letter word: a 4-byte ASCII admin command sent instead of a ConnectRequest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FourLetterWord {
    /// `ruok`: answers `imok` when healthy.
    Ruok,
    /// `srvr`: server summary.
    Srvr,
    /// `stat`: server summary plus connections.
    Stat,
    /// `mntr`: metrics as `zk_<key>\t<value>` lines.
    Mntr,
    /// `conf`: configuration.
    Conf,
    /// `cons`: connections in detail.
    Cons,
    /// `wchs`: watch summary.
    Wchs,
    /// `wchc`: watches by session.
    Wchc,
    /// `wchp`: watches by path.
    Wchp,
    /// `envi`: environment, including `zookeeper.version=`.
    Envi,
    /// `dump`: sessions with ephemerals.
    Dump,
    /// `isro`: `rw` or `ro`.
    Isro,
    /// `crst`: reset connection stats.
    Crst,
    /// `srst`: reset server stats.
    Srst,
    /// `dirs`: disk sizes.
    Dirs,
    /// `gtmk`: get the trace mask.
    Gtmk,
    /// `stmk`: set the trace mask (ZooKeeper then reads an 8-byte mask).
    Stmk,
    /// `hash`: digest history.
    Hash,
}

impl FourLetterWord {
    /// Every word.
    pub const ALL: [FourLetterWord; 18] = [
        FourLetterWord::Ruok,
        FourLetterWord::Srvr,
        FourLetterWord::Stat,
        FourLetterWord::Mntr,
        FourLetterWord::Conf,
        FourLetterWord::Cons,
        FourLetterWord::Wchs,
        FourLetterWord::Wchc,
        FourLetterWord::Wchp,
        FourLetterWord::Envi,
        FourLetterWord::Dump,
        FourLetterWord::Isro,
        FourLetterWord::Crst,
        FourLetterWord::Srst,
        FourLetterWord::Dirs,
        FourLetterWord::Gtmk,
        FourLetterWord::Stmk,
        FourLetterWord::Hash,
    ];

    /// The word as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            FourLetterWord::Ruok => "ruok",
            FourLetterWord::Srvr => "srvr",
            FourLetterWord::Stat => "stat",
            FourLetterWord::Mntr => "mntr",
            FourLetterWord::Conf => "conf",
            FourLetterWord::Cons => "cons",
            FourLetterWord::Wchs => "wchs",
            FourLetterWord::Wchc => "wchc",
            FourLetterWord::Wchp => "wchp",
            FourLetterWord::Envi => "envi",
            FourLetterWord::Dump => "dump",
            FourLetterWord::Isro => "isro",
            FourLetterWord::Crst => "crst",
            FourLetterWord::Srst => "srst",
            FourLetterWord::Dirs => "dirs",
            FourLetterWord::Gtmk => "gtmk",
            FourLetterWord::Stmk => "stmk",
            FourLetterWord::Hash => "hash",
        }
    }
}

/// Recognises a four-letter word in the first four bytes a connection sent. Fewer than
/// four bytes, or anything else, is `None` (a frame length, most likely). Bytes after the
/// fourth are ignored.
pub fn four_letter_word(first4: &[u8]) -> Option<FourLetterWord> {
    let word = first4.get(..4)?;
    FourLetterWord::ALL
        .into_iter()
        .find(|candidate| candidate.as_str().as_bytes() == word)
}
