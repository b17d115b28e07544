use ek_types::ErrorCode;

/// Why the length prefix of a frame was refused. The server closes the connection on
/// either, as ZooKeeper does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is negative.
    #[error("negative frame length {0}")]
    Negative(i32),
    /// The length prefix exceeds the configured maximum (`jute.maxbuffer`).
    #[error("frame length {len} exceeds the maximum {max}")]
    TooLarge {
        /// The announced payload length in bytes.
        len: usize,
        /// The configured maximum payload length in bytes.
        max: usize,
    },
}

/// Why a payload could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload ended before a field was complete.
    #[error("truncated: {needed} bytes needed at offset {offset}, {available} available")]
    Truncated {
        /// Where the field starts.
        offset: usize,
        /// How many bytes the field needs.
        needed: usize,
        /// How many bytes were left.
        available: usize,
    },
    /// A string, buffer or vector length is negative but not the null marker `-1`.
    #[error("invalid length {len} at offset {offset}")]
    InvalidLength {
        /// The length read.
        len: i32,
        /// Where the length starts.
        offset: usize,
    },
    /// A string is not valid UTF-8.
    #[error("string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string bytes start.
        offset: usize,
    },
    /// A multi request holds an op type that is not allowed there.
    #[error("op type {0} is not allowed in this multi")]
    DisallowedMultiOp(i32),
    /// A multi response holds a result type the codec does not know.
    #[error("unknown multi result type {0}")]
    UnknownMultiResult(i32),
    /// An error code that ZooKeeper does not define (client side).
    #[error("unknown error code {0}")]
    UnknownErrorCode(i32),
    /// A watch event type that ZooKeeper does not define (client side).
    #[error("unknown event type {0}")]
    UnknownEventType(i32),
}

/// Why the body of a request whose header was read could not be turned into a
/// [`crate::Request`]. The connection stays open: the server answers with
/// [`BodyError::error_code`] and the request's xid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The opcode is not one a client may send; answer Unimplemented (-6).
    #[error("unknown opcode")]
    UnknownOpcode,
    /// The body does not decode; answer MarshallingError (-5).
    #[error("malformed request body: {0}")]
    Malformed(#[source] DecodeError),
}

impl BodyError {
    /// The error code the server answers with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            BodyError::UnknownOpcode => ErrorCode::Unimplemented,
            BodyError::Malformed(_) => ErrorCode::MarshallingError,
        }
    }
}

impl From<DecodeError> for BodyError {
    fn from(error: DecodeError) -> BodyError {
        BodyError::Malformed(error)
    }
}
