//! Eight bytes at a time: the bit tricks the hot scans share (finding field separators, finding
//! bytes JSON must escape). Each returns a word with the high bit set in flagged bytes; a
//! non-zero result is exact for "some byte matches", and its lowest flagged byte is always a real
//! match (borrows only ever flag bytes above a true one).
//!
//! Owns nothing but the arithmetic; callers decide what to look for.

/// `0x0101…01`: multiplied by a byte, that byte in every lane.
const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// The little-endian word of `bytes[at..at + 8]` (the caller keeps `at + 8` in bounds).
#[inline]
pub(crate) fn word_at(bytes: &[u8], at: usize) -> u64 {
    let chunk: [u8; 8] = bytes[at..at + 8].try_into().expect("8 bytes");
    u64::from_le_bytes(chunk)
}

/// Flags the bytes of `word` equal to `byte`.
#[inline]
pub(crate) fn equal_to(word: u64, byte: u8) -> u64 {
    zero_bytes(word ^ (ONES * u64::from(byte)))
}

/// Flags the bytes of `word` below `bound` (at most 0x80).
#[inline]
pub(crate) fn below(word: u64, bound: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(bound)) & !word & HIGHS
}

/// The index of the first flagged byte of a non-zero result.
#[inline]
pub(crate) fn first(flags: u64) -> usize {
    (flags.trailing_zeros() / 8) as usize
}

#[inline]
fn zero_bytes(word: u64) -> u64 {
    below(word, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_match_a_plain_byte_search() {
        let text = b"ab,c<de\x1ff\"g(";
        for at in 0..text.len() - 8 {
            let w = word_at(text, at);
            for byte in [b',', b'<', b'"', b'('] {
                let expected = text[at..at + 8].iter().position(|b| *b == byte);
                let flags = equal_to(w, byte);
                assert_eq!((flags != 0).then(|| first(flags)), expected, "{at} {byte}");
            }
            let expected = text[at..at + 8].iter().position(|b| *b < 0x20);
            let flags = below(w, 0x20);
            assert_eq!((flags != 0).then(|| first(flags)), expected, "{at}");
        }
    }
}
