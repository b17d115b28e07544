use crate::{four_letter_word, FourLetterWord, FrameDecoder, FrameError, DEFAULT_MAX_FRAME_BYTES};
use bytes::{BufMut, BytesMut};

fn buf_with_len(len: i32) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_i32(len);
    buf
}

#[test]
fn refuses_bad_length_prefixes() {
    let mut decoder = FrameDecoder::default();
    let mut buf = buf_with_len(-1);
    assert_eq!(decoder.decode(&mut buf), Err(FrameError::Negative(-1)));
    assert_eq!(buf.len(), 4, "buffer untouched on error");
    let max = DEFAULT_MAX_FRAME_BYTES;
    assert_eq!(
        decoder.decode(&mut buf_with_len(i32::MAX)),
        Err(FrameError::TooLarge {
            len: i32::MAX as usize,
            max
        })
    );
    assert_eq!(
        decoder.decode(&mut buf_with_len(max as i32 + 1)),
        Err(FrameError::TooLarge { len: max + 1, max })
    );
    assert_eq!(
        decoder.decode(&mut buf_with_len(i32::MIN)),
        Err(FrameError::Negative(i32::MIN))
    );
}

#[test]
fn accepts_exactly_max_and_waits_for_it() {
    let mut decoder = FrameDecoder::new(8);
    let mut buf = buf_with_len(8);
    buf.put_slice(&[1, 2, 3]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.put_slice(&[4, 5, 6, 7, 8, 9]);
    let frame = decoder.decode(&mut buf).expect("valid").expect("complete");
    assert_eq!(&frame[..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&buf[..], &[9]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
}

#[test]
fn empty_frames_and_short_prefixes() {
    let mut decoder = FrameDecoder::default();
    let mut buf = BytesMut::from(&[0u8, 0, 0][..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.put_u8(0);
    let frame = decoder.decode(&mut buf).expect("valid").expect("complete");
    assert!(frame.is_empty());
    assert!(buf.is_empty());
}

#[test]
fn four_letter_words() {
    for word in FourLetterWord::ALL {
        assert_eq!(four_letter_word(word.as_str().as_bytes()), Some(word));
    }
    assert_eq!(four_letter_word(b"ruokXX"), Some(FourLetterWord::Ruok));
    assert_eq!(four_letter_word(b"ruo"), None);
    assert_eq!(four_letter_word(b"RUOK"), None);
    assert_eq!(four_letter_word(&[0, 0, 0, 45]), None);
    // A word read as a frame length is far beyond the maximum.
    let mut buf = BytesMut::from(&b"ruok"[..]);
    assert!(matches!(
        FrameDecoder::default().decode(&mut buf),
        Err(FrameError::TooLarge { .. })
    ));
}
