//! `lsh`'s variables and word expansion: `$NAME`, `${NAME}`, `$?` (the last status), `$$`, `$#`,
//! `$0`…`$9`, `~` at the start of a word, and `*`, `?`, `[…]` globs in unquoted text (a glob that
//! matches nothing stays as written). A variable's value is never split into several words.

use super::lex::{Part, Word};
use std::collections::{BTreeMap, BTreeSet};

/// The shell's variables (those in the environment at start are exported).
#[derive(Debug, Clone, Default)]
pub struct Vars {
    vals: BTreeMap<String, String>,
    exported: BTreeSet<String>,
    /// The last command's status (`$?`).
    pub status: i32,
    /// `$0` (the shell or script) and the positional arguments.
    pub args: Vec<String>,
}

impl Vars {
    /// The process environment, all exported.
    pub fn from_env(args: Vec<String>) -> Vars {
        let vals: BTreeMap<String, String> =
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
        let exported = vals.keys().cloned().collect();
        Vars { vals, exported, status: 0, args }
    }

    /// A variable's value (unset: `None`).
    pub fn get(&self, name: &str) -> Option<String> {
        match name {
            "?" => Some(self.status.to_string()),
            "$" => Some(std::process::id().to_string()),
            "#" => Some(self.args.len().saturating_sub(1).to_string()),
            n if n.bytes().all(|b| b.is_ascii_digit()) => {
                n.parse::<usize>().ok().and_then(|i| self.args.get(i).cloned())
            }
            n => self.vals.get(n).cloned(),
        }
    }

    /// Sets a variable (exported if it was).
    pub fn set(&mut self, name: &str, value: String) {
        self.vals.insert(name.to_string(), value);
    }

    /// Marks a variable exported.
    pub fn export(&mut self, name: &str) {
        self.exported.insert(name.to_string());
    }

    /// Removes a variable.
    pub fn unset(&mut self, name: &str) {
        self.vals.remove(name);
        self.exported.remove(name);
    }

    /// What commands get as their environment.
    pub fn environment(&self) -> impl Iterator<Item = (&String, &String)> {
        self.vals.iter().filter(|(k, _)| self.exported.contains(*k))
    }

    /// The exported variables, as `export` lists them.
    pub fn exported_list(&self) -> Vec<String> {
        self.environment().map(|(k, v)| format!("export {k}={}", quote(v))).collect()
    }
}

/// A value quoted so that `lsh` reads it back as one word.
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn home(vars: &Vars) -> Option<String> {
    vars.get("HOME").filter(|h| !h.is_empty())
}

/// A word as one string (no globbing): for redirection targets and assignments.
pub fn expand_one(w: &Word, vars: &Vars) -> String {
    let mut s = String::new();
    for (i, p) in w.0.iter().enumerate() {
        match p {
            Part::Lit { text, quoted: false } if i == 0 && (text == "~" || text.starts_with("~/")) => {
                match home(vars) {
                    Some(h) => {
                        s.push_str(&h);
                        s.push_str(&text[1..]);
                    }
                    None => s.push_str(text),
                }
            }
            Part::Lit { text, .. } => s.push_str(text),
            Part::Var { name } => s.push_str(&vars.get(name).unwrap_or_default()),
        }
    }
    s
}

/// A word as the arguments it stands for: one, or the sorted paths its glob matches.
pub fn expand(w: &Word, vars: &Vars) -> Vec<String> {
    let text = expand_one(w, vars);
    let globbed = w.0.iter().any(|p| matches!(p, Part::Lit { text, quoted: false } if text.contains(['*', '?', '['])));
    if !globbed {
        return vec![text];
    }
    // The pattern: unquoted literal text as written, everything else escaped.
    let mut pattern = String::new();
    for (i, p) in w.0.iter().enumerate() {
        match p {
            Part::Lit { text, quoted: false } => {
                if i == 0 && (text == "~" || text.starts_with("~/")) {
                    match home(vars) {
                        Some(h) => {
                            pattern.push_str(&glob::Pattern::escape(&h));
                            pattern.push_str(&text[1..]);
                        }
                        None => pattern.push_str(&glob::Pattern::escape(text)),
                    }
                } else {
                    pattern.push_str(text);
                }
            }
            Part::Lit { text, quoted: true } => pattern.push_str(&glob::Pattern::escape(text)),
            Part::Var { name } => pattern.push_str(&glob::Pattern::escape(&vars.get(name).unwrap_or_default())),
        }
    }
    let opts = glob::MatchOptions { require_literal_leading_dot: true, ..glob::MatchOptions::new() };
    let found: Vec<String> = match glob::glob_with(&pattern, opts) {
        Ok(paths) => paths.filter_map(Result::ok).map(|p| p.to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    if found.is_empty() {
        vec![text]
    } else {
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::lex::{lex, Token};

    fn word(s: &str) -> Word {
        match lex(s).unwrap().into_iter().next() {
            Some(Token::Word(w)) => w,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn variables_tilde_and_quotes() {
        let mut v = Vars { args: vec!["lsh".into(), "one".into()], ..Vars::default() };
        v.set("HOME", "/home/x y".into());
        v.set("A", "a b".into());
        v.status = 3;
        assert_eq!(expand(&word("~/d"), &v), vec!["/home/x y/d"]);
        assert_eq!(expand(&word("'~'/d"), &v), vec!["~/d"]);
        assert_eq!(expand(&word("$A"), &v), vec!["a b"]);
        assert_eq!(expand(&word("x${A}y$?"), &v), vec!["xa by3"]);
        assert_eq!(expand(&word("'$A'"), &v), vec!["$A"]);
        assert_eq!(expand(&word("$1:$#:$0:$9"), &v), vec!["one:1:lsh:"]);
        assert_eq!(expand(&word("$UNSET"), &v), vec![""]);
        v.export("A");
        assert_eq!(v.exported_list(), vec!["export A='a b'"]);
        v.unset("A");
        assert_eq!(v.get("A"), None);
    }

    #[test]
    fn globs_match_files_or_stay() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.txt", "a.txt", ".hidden.txt", "c.md"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let v = Vars::default();
        let d = dir.path().display().to_string();
        let got = expand(&word(&format!("{d}/*.txt")), &v);
        assert_eq!(got, vec![format!("{d}/a.txt"), format!("{d}/b.txt")]);
        assert_eq!(expand(&word(&format!("'{d}'/*.md")), &v), vec![format!("{d}/c.md")]);
        // Quoted: no glob; no match: as written.
        assert_eq!(expand(&word(&format!("'{d}/*.txt'")), &v), vec![format!("{d}/*.txt")]);
        assert_eq!(expand(&word(&format!("{d}/*.none")), &v), vec![format!("{d}/*.none")]);
    }
}
