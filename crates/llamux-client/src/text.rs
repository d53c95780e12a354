//! A response's text as the engine's token pieces arrive: released once no stop string can
//! still begin in it and its UTF-8 is complete, and cut where a stop string begins (OpenAI does
//! not return the stop sequence). Streamed and whole responses both go through it, so their
//! texts are the same. `llamux serve` and every client backend use it, so all hosts cut alike.

/// Text released as pieces arrive, cut at the first stop string.
pub struct TextOut {
    bytes: Vec<u8>,
    /// Bytes already released.
    sent: usize,
    stops: Vec<Vec<u8>>,
    /// Bytes held back: one less than the longest stop string.
    hold: usize,
    /// A stop string was found: `bytes` ends where it began, and later pieces are ignored.
    cut: bool,
}

impl TextOut {
    /// A text that ends where any of `stops` begins.
    pub fn new(stops: Vec<Vec<u8>>) -> Self {
        let stops: Vec<Vec<u8>> = stops.into_iter().filter(|s| !s.is_empty()).collect();
        let hold = stops.iter().map(Vec::len).max().unwrap_or(0).saturating_sub(1);
        TextOut { bytes: Vec::new(), sent: 0, stops, hold, cut: false }
    }

    /// Adds a piece; returns the text it releases (possibly empty).
    pub fn push(&mut self, piece: &[u8]) -> String {
        if self.cut {
            return String::new();
        }
        self.bytes.extend_from_slice(piece);
        // A stop string released text cannot hold began after `sent` (everything before it was
        // at least `hold` bytes from the end when released).
        let found = self
            .stops
            .iter()
            .filter_map(|s| self.bytes[self.sent..].windows(s.len()).position(|w| w == s.as_slice()))
            .min();
        if let Some(at) = found {
            self.bytes.truncate(self.sent + at);
            self.cut = true;
            return self.release(self.bytes.len(), true);
        }
        self.release(self.bytes.len().saturating_sub(self.hold).max(self.sent), false)
    }

    /// Whether a stop string was found (later pieces are ignored).
    pub fn stopped(&self) -> bool {
        self.cut
    }

    /// The rest of the text, once generation has ended.
    pub fn finish(&mut self) -> String {
        self.release(self.bytes.len(), true)
    }

    /// Releases up to `end`, less a trailing incomplete UTF-8 sequence unless `last`.
    fn release(&mut self, end: usize, last: bool) -> String {
        let chunk = &self.bytes[self.sent..end];
        let n = if last { chunk.len() } else { complete_utf8_len(chunk) };
        let out = String::from_utf8_lossy(&chunk[..n]).into_owned();
        self.sent += n;
        out
    }
}

/// `b`'s length without a trailing incomplete UTF-8 sequence.
fn complete_utf8_len(b: &[u8]) -> usize {
    for back in 1..=b.len().min(4) {
        let i = b.len() - back;
        let c = b[i];
        if c & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back for the lead byte
        }
        let need = match c {
            0xF0..=0xFF => 4,
            0xE0..=0xEF => 3,
            0xC0..=0xDF => 2,
            _ => 1,
        };
        return if back < need { i } else { b.len() };
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&[u8]]) -> (Vec<String>, String) {
        let mut t = TextOut::new(stops.iter().map(|s| s.as_bytes().to_vec()).collect());
        let mut parts: Vec<String> = pieces.iter().map(|p| t.push(p)).collect();
        parts.push(t.finish());
        let whole = parts.concat();
        (parts, whole)
    }

    #[test]
    fn without_stops_text_goes_out_as_it_comes() {
        let (parts, whole) = run(&[], &[b"Hello", b" wor", b"ld"]);
        assert_eq!(parts, ["Hello", " wor", "ld", ""]);
        assert_eq!(whole, "Hello world");
    }

    #[test]
    fn utf8_split_across_pieces_is_held_until_complete() {
        let e = "é".as_bytes();
        let euro = "€".as_bytes();
        let (parts, whole) = run(&[], &[b"caf", &e[..1], &e[1..], b" ", &euro[..2], &euro[2..]]);
        assert_eq!(parts, ["caf", "", "é", " ", "", "€", ""]);
        assert_eq!(whole, "café €");
        // An incomplete sequence at the very end comes out as a replacement character.
        assert_eq!(run(&[], &[b"a", &euro[..2]]).1, "a\u{fffd}");
    }

    #[test]
    fn stop_strings_are_cut_and_never_released_in_part() {
        // The stop string spans pieces; nothing of it goes out.
        let (parts, whole) = run(&["\n\nUser:"], &[b"Sure.", b"\n", b"\nUs", b"er:", b" more"]);
        assert_eq!(whole, "Sure.");
        assert!(parts.iter().all(|p| !p.contains('\n')), "{parts:?}");
        // Inside one piece, with text after it.
        assert_eq!(run(&["STOP"], &[b"abc", b"deSTOPxyz", b"later"]).1, "abcde");
        // The earliest of several stops wins; a near miss is released.
        assert_eq!(run(&["zz", "b"], &[b"aaz", b"a", b"b", b"zz"]).1, "aaza");
        assert_eq!(run(&["ab"], &[b"a", b"c"]).1, "ac");
    }
}
