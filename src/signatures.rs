//! Request signatures as Slack (`v0=…`) and GitHub (`sha256=…`) send them:
//! HMAC-SHA256 digests in lowercase hex. Only that exact spelling is read,
//! so each body has one accepted signature string (an upper-case copy of a
//! valid one is refused like any other altered signature).

/// The bytes of a lowercase hex digest; `None` for anything else (upper
/// case, an odd length, a character outside `0-9a-f`).
pub fn lowercase_hex(digest: &str) -> Option<Vec<u8>> {
    if !digest.len().is_multiple_of(2)
        || !digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    hex::decode(digest).ok()
}

#[cfg(test)]
mod tests {
    use super::lowercase_hex;

    #[test]
    fn only_lowercase_hex_is_read() {
        assert_eq!(lowercase_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(lowercase_hex(""), Some(vec![]));
        for refused in ["00FF10", "00fF10", "0ff", "zz", " 00", "00\n"] {
            assert_eq!(lowercase_hex(refused), None, "{refused:?}");
        }
    }
}
