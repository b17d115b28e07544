//! Jute primitives and the shared data records (`Stat`, `Id`, `ACL`, `ClientInfo`).

use crate::{ClientInfo, DecodeError};
use bytes::BufMut;
use ek_types::{Acl, Id, Stat, Zxid};

/// A cursor over a payload. Every read checks bounds and returns an error instead of
/// panicking, whatever the bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, needed: usize) -> Result<&'a [u8], DecodeError> {
        let truncated = DecodeError::Truncated {
            offset: self.pos,
            needed,
            available: self.remaining(),
        };
        let end = self.pos.checked_add(needed).ok_or(truncated.clone())?;
        let bytes = self.buf.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        // Java's DataInput.readBoolean: any non-zero byte is true.
        Ok(self.array::<1>()? != [0])
    }

    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn zxid(&mut self) -> Result<Zxid, DecodeError> {
        Ok(Zxid(self.i64()?))
    }

    /// Reads a length prefix: `None` for the null marker `-1`.
    fn len(&mut self) -> Result<Option<usize>, DecodeError> {
        let offset = self.pos;
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        usize::try_from(len)
            .map(Some)
            .map_err(|_| DecodeError::InvalidLength { len, offset })
    }

    /// A `buffer`, borrowed; null is empty.
    pub(crate) fn buffer_slice(&mut self) -> Result<&'a [u8], DecodeError> {
        match self.len()? {
            None => Ok(&[]),
            Some(len) => self.take(len),
        }
    }

    /// A `buffer`, owned; null is empty.
    pub(crate) fn buffer(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.buffer_slice()?.to_vec())
    }

    /// A `buffer`, borrowed; null (`-1`) stays distinct from empty.
    pub(crate) fn buffer_slice_opt(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.len()? {
            None => Ok(None),
            Some(len) => self.take(len).map(Some),
        }
    }

    /// A `buffer`, owned; null (`-1`) stays distinct from empty.
    pub(crate) fn buffer_opt(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        Ok(self.buffer_slice_opt()?.map(<[u8]>::to_vec))
    }

    /// A `ustring`; null is empty.
    pub(crate) fn ustring(&mut self) -> Result<String, DecodeError> {
        let bytes = self.buffer_slice()?;
        let offset = self.pos - bytes.len();
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8 { offset })
    }

    /// A `vector<T>`; null is empty. The capacity is bounded by the bytes left, so a
    /// hostile count cannot make it allocate more than the payload's size.
    pub(crate) fn vector<T>(
        &mut self,
        mut element: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let Some(count) = self.len()? else {
            return Ok(Vec::new());
        };
        let mut items = Vec::with_capacity(count.min(self.remaining()));
        for _ in 0..count {
            items.push(element(self)?);
        }
        Ok(items)
    }

    pub(crate) fn strings(&mut self) -> Result<Vec<String>, DecodeError> {
        self.vector(Reader::ustring)
    }

    pub(crate) fn stat(&mut self) -> Result<Stat, DecodeError> {
        Ok(Stat {
            czxid: self.zxid()?,
            mzxid: self.zxid()?,
            ctime: self.i64()?,
            mtime: self.i64()?,
            version: self.i32()?,
            cversion: self.i32()?,
            aversion: self.i32()?,
            ephemeral_owner: self.i64()?,
            data_length: self.i32()?,
            num_children: self.i32()?,
            pzxid: self.zxid()?,
        })
    }

    pub(crate) fn id(&mut self) -> Result<Id, DecodeError> {
        Ok(Id {
            scheme: self.ustring()?,
            id: self.ustring()?,
        })
    }

    pub(crate) fn acl(&mut self) -> Result<Acl, DecodeError> {
        Ok(Acl {
            perms: self.i32()?,
            id: self.id()?,
        })
    }

    pub(crate) fn acls(&mut self) -> Result<Vec<Acl>, DecodeError> {
        self.vector(Reader::acl)
    }

    pub(crate) fn client_info(&mut self) -> Result<ClientInfo, DecodeError> {
        Ok(ClientInfo {
            auth_scheme: self.ustring()?,
            user: self.ustring()?,
        })
    }
}

/// A jute length: lengths beyond `i32::MAX` cannot be expressed and never fit a frame, so
/// they saturate (the peer then refuses the frame) rather than wrap.
fn put_len(out: &mut impl BufMut, len: usize) {
    out.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

pub(crate) fn put_bool(out: &mut impl BufMut, value: bool) {
    out.put_u8(u8::from(value));
}

pub(crate) fn put_buffer(out: &mut impl BufMut, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.put_slice(bytes);
}

/// A `buffer` that may be null: `None` is written as the null marker `-1`.
pub(crate) fn put_buffer_opt(out: &mut impl BufMut, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => put_buffer(out, bytes),
        None => out.put_i32(-1),
    }
}

pub(crate) fn put_ustring(out: &mut impl BufMut, value: &str) {
    put_buffer(out, value.as_bytes());
}

pub(crate) fn put_strings<S: AsRef<str>>(out: &mut impl BufMut, values: &[S]) {
    put_len(out, values.len());
    for value in values {
        put_ustring(out, value.as_ref());
    }
}

pub(crate) fn put_stat(out: &mut impl BufMut, stat: &Stat) {
    out.put_i64(stat.czxid.0);
    out.put_i64(stat.mzxid.0);
    out.put_i64(stat.ctime);
    out.put_i64(stat.mtime);
    out.put_i32(stat.version);
    out.put_i32(stat.cversion);
    out.put_i32(stat.aversion);
    out.put_i64(stat.ephemeral_owner);
    out.put_i32(stat.data_length);
    out.put_i32(stat.num_children);
    out.put_i64(stat.pzxid.0);
}

pub(crate) fn put_id(out: &mut impl BufMut, id: &Id) {
    put_ustring(out, &id.scheme);
    put_ustring(out, &id.id);
}

pub(crate) fn put_acls(out: &mut impl BufMut, acls: &[Acl]) {
    put_len(out, acls.len());
    for acl in acls {
        out.put_i32(acl.perms);
        put_id(out, &acl.id);
    }
}

pub(crate) fn put_client_infos(out: &mut impl BufMut, infos: &[ClientInfo]) {
    put_len(out, infos.len());
    for info in infos {
        put_ustring(out, &info.auth_scheme);
        put_ustring(out, &info.user);
    }
}

/// Where frames are appended: a `Vec<u8>` or a `BytesMut`. The length prefix is patched in
/// place once the payload is written, so no reply needs an intermediate buffer.
pub trait FrameBuf: BufMut + AsMut<[u8]> {}

impl<T: BufMut + AsMut<[u8]>> FrameBuf for T {}

/// Appends one frame: a length prefix, then whatever `payload` writes. Returns the payload
/// length, which the caller may compare with the peer's maximum frame size.
pub(crate) fn put_frame<B: FrameBuf>(out: &mut B, payload: impl FnOnce(&mut B)) -> usize {
    let start = AsMut::<[u8]>::as_mut(out).len();
    out.put_i32(0);
    payload(out);
    let frame = AsMut::<[u8]>::as_mut(out);
    let payload_len = frame.len().saturating_sub(start + 4);
    let len = i32::try_from(payload_len).unwrap_or(i32::MAX);
    if let Some(prefix) = frame.get_mut(start..start + 4) {
        prefix.copy_from_slice(&len.to_be_bytes());
    }
    payload_len
}
