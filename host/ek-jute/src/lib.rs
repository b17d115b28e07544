//! The ZooKeeper client wire codec: splits a byte stream into frames, decodes the
//! ConnectRequest and every client request into typed values, and encodes the
//! ConnectResponse, replies (multi included) and watch notifications, byte for byte as
//! ZooKeeper 3.x does. The client side (encode requests, decode replies) serves the CLI,
//! the bench tool and raw-frame tests.
//!
//! This crate is pure: it only turns bytes into values and back. It never does I/O, never
//! validates paths, ACLs or versions (the server does), and never panics on hostile bytes:
//! every decoder returns a typed error instead.
#![warn(missing_docs)]

mod error;
mod frame;
mod jute;
mod request;
mod response;

pub use error::{BodyError, DecodeError, FrameError};
pub use frame::{four_letter_word, FourLetterWord, FrameDecoder, DEFAULT_MAX_FRAME_BYTES};
pub use jute::FrameBuf;
pub use request::{
    decode_connect_request, decode_request, encode_connect_request, encode_request, ConnectRequest,
    DecodedRequest, ReadOp, Request,
};
pub use response::{
    decode_connect_response, decode_notification, decode_reply, decode_reply_header,
    encode_connect_response, encode_notification, encode_reply, ClientInfo, ConnectResponse,
    OwnedResponse, ReadResult, ReplyHeader, Response, WatcherEvent,
};

#[cfg(test)]
mod tests;
