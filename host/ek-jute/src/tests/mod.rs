mod frames;
mod props;
mod snapshots;

/// Formats bytes as a hex dump, 16 bytes a line, for snapshots.
fn hex(bytes: &[u8]) -> String {
    let mut text = String::new();
    for (line, chunk) in bytes.chunks(16).enumerate() {
        let words: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!("{:04x}: {}\n", line * 16, words.join(" ")));
    }
    text
}

/// Parses a hex string, ignoring whitespace; for hand-built frames.
fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(pair, 16).expect("hex digit pair")
        })
        .collect()
}

/// Strips and checks the 4-byte length prefix of one encoded frame.
fn payload(frame: &[u8]) -> &[u8] {
    let (prefix, payload) = frame.split_at(4);
    let len = i32::from_be_bytes(prefix.try_into().expect("4 bytes"));
    assert_eq!(len as usize, payload.len(), "length prefix");
    payload
}
