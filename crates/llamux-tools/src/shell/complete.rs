//! `lsh`'s line editor helper: the first word of a command completes to builtins and programs on
//! `$PATH`, later words to file names.

use super::builtins;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use std::os::unix::fs::PermissionsExt;

/// The completer.
pub struct LshHelper {
    files: FilenameCompleter,
}

impl Default for LshHelper {
    fn default() -> Self {
        LshHelper { files: FilenameCompleter::new() }
    }
}

/// Builtins and executables on `$PATH` whose names start with `prefix`, sorted, once each.
pub fn commands(prefix: &str) -> Vec<String> {
    let mut found: Vec<String> =
        builtins::names().iter().filter(|n| n.starts_with(prefix)).map(|s| s.to_string()).collect();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(prefix) {
                continue;
            }
            let exec = std::fs::metadata(e.path()).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
            if exec {
                found.push(name);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Whether the word ending at `pos` is the first of a command.
fn command_position(line: &str, pos: usize) -> Option<usize> {
    let before = &line[..pos];
    let start = before.rfind(|c: char| c.is_whitespace() || "|;&".contains(c)).map_or(0, |i| i + 1);
    let head = before[..start].trim_end();
    let first = head.is_empty() || head.ends_with(['|', ';', '&']);
    let word = &before[start..];
    (first && !word.contains('/')).then_some(start)
}

impl Completer for LshHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        if let Some(start) = command_position(line, pos) {
            let cands = commands(&line[start..pos])
                .into_iter()
                .map(|c| Pair { display: c.clone(), replacement: format!("{c} ") })
                .collect();
            return Ok((start, cands));
        }
        self.files.complete(line, pos, ctx)
    }
}

impl Hinter for LshHelper {
    type Hint = String;
}
impl Highlighter for LshHelper {}
impl Validator for LshHelper {}
impl Helper for LshHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_words_complete_to_commands() {
        assert_eq!(command_position("ec", 2), Some(0));
        assert_eq!(command_position("ls | gr", 7), Some(5));
        assert_eq!(command_position("ls fi", 5), None);
        assert_eq!(command_position("./x", 3), None);
        let c = commands("expo");
        assert_eq!(c.first().map(String::as_str), Some("export"));
        assert!(commands("s").iter().any(|c| c == "sh"), "sh is on PATH");
    }
}
