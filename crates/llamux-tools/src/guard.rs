//! Keeps the model to the facts: its explanation is released a sentence at a time, and a
//! sentence quoting a number that is not in the facts (or the question) is left out.

use std::collections::HashSet;

/// The numbers in `text` (`99`, `2.5`, `4242`), as written, trailing zeros of decimals kept.
pub fn numbers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let decimal_point = c == '.' && !cur.is_empty() && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if c.is_ascii_digit() || decimal_point {
            cur.push(c);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Sentences out, checked.
pub struct Guard {
    known: HashSet<String>,
    pending: String,
    /// Sentences left out.
    pub dropped: usize,
}

impl Guard {
    /// A guard that accepts the numbers of `facts`.
    pub fn new(facts: &str) -> Self {
        let mut known: HashSet<String> = numbers(facts).into_iter().collect();
        // Whole parts of decimals too ("2.50" allows "2.5" and "2"), and list markers.
        for n in known.clone() {
            if let Some((w, f)) = n.split_once('.') {
                known.insert(w.to_string());
                known.insert(format!("{w}.{}", f.trim_end_matches('0')).trim_end_matches('.').to_string());
            }
        }
        for i in 0..=9 {
            known.insert(i.to_string());
        }
        Guard { known, pending: String::new(), dropped: 0 }
    }

    fn check(&mut self, sentence: String) -> String {
        if numbers(&sentence).iter().all(|n| self.known.contains(n)) {
            sentence
        } else {
            self.dropped += 1;
            String::new()
        }
    }

    /// Adds text; returns the complete sentences that pass.
    pub fn push(&mut self, text: &str) -> String {
        self.pending.push_str(text);
        let mut out = String::new();
        loop {
            let b = self.pending.as_bytes();
            // A sentence ends at a newline, or at . ! ? followed by white space.
            let end = (0..b.len()).find(|&i| {
                b[i] == b'\n'
                    || (matches!(b[i], b'.' | b'!' | b'?') && b.get(i + 1).is_some_and(|c| c.is_ascii_whitespace()))
            });
            let Some(end) = end else { break };
            let rest = self.pending.split_off(end + 1);
            let sentence = std::mem::replace(&mut self.pending, rest);
            out.push_str(&self.check(sentence));
        }
        out
    }

    /// The last sentence, checked.
    pub fn finish(&mut self) -> String {
        let s = std::mem::take(&mut self.pending);
        self.check(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found() {
        assert_eq!(numbers("pid 4242 uses 99% (2.50 load). End."), vec!["4242", "99", "2.50"]);
        assert_eq!(numbers("no digits"), Vec::<String>::new());
    }

    #[test]
    fn sentences_with_unknown_numbers_are_left_out() {
        let mut g = Guard::new("- pid 4242 `yes` uses 99% of one CPU\n- load average 2.50 on 2 CPUs\n");
        let mut out = g.push("The process 4242 uses 99% of a CPU. It has used 4.58% of");
        out.push_str(&g.push(" memory. Load is 2.5 per CPU."));
        out.push_str(&g.finish());
        assert_eq!(out, "The process 4242 uses 99% of a CPU. Load is 2.5 per CPU.");
        assert_eq!(g.dropped, 1);
    }
}
