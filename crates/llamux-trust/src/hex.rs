//! Lower-case hexadecimal, without allocation.

use core::fmt;

/// Formats bytes as lower-case hex.
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes exactly `N` bytes from `2 * N` hex digits (either case); `None` for anything else.
pub fn decode<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn round_trip_and_refusals() {
        let b = [0x00, 0x7f, 0xa5, 0xff];
        let s = Hex(&b).to_string();
        assert_eq!(s, "007fa5ff");
        assert_eq!(decode::<4>(s.as_bytes()), Some(b));
        assert_eq!(decode::<4>(b"007FA5FF"), Some(b));
        assert_eq!(decode::<4>(b"007fa5f"), None);
        assert_eq!(decode::<4>(b"007fa5fg"), None);
        assert_eq!(decode::<4>(b"007fa5ff00"), None);
        assert_eq!(decode::<2>("é1".as_bytes()), None);
    }
}
