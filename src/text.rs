//! Small helpers on text that every layer uses (hex, digests, cutting text,
//! identifiers), kept in a leaf so that no layer imports a higher one for
//! them.

use sha2::{Digest, Sha256};

/// The longest name kept anywhere: a flow's steps, a span's name.
pub const NAME_MAX_BYTES: usize = 200;

/// Bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex back to bytes; `None` for anything that is not whole bytes of hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

/// The SHA-256 of a text, in hex: how sources and journals are named.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// The first `max` bytes of `text`, on a character boundary.
pub fn clip_str(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A Python-style identifier of ASCII letters, digits and `_` (flow,
/// input, service and secret names).
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_goes_there_and_back() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert_eq!(unhex("000fff"), Some(vec![0, 15, 255]));
        assert_eq!(unhex("0f0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(sha256_hex("").len(), 64);
    }

    #[test]
    fn text_is_cut_on_a_character_boundary() {
        assert_eq!(clip_str("été", 2), "é");
        assert_eq!(clip_str("été", 1), "");
        assert_eq!(clip_str("abc", 10), "abc");
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("_a1") && is_identifier("flow"));
        assert!(!is_identifier("") && !is_identifier("1a") && !is_identifier("a-b") && !is_identifier("é"));
    }
}
