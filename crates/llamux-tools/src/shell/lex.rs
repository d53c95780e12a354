//! `lsh`'s lexer: a line becomes words (with their quoting kept, so that expansion knows what was
//! quoted) and operators (`|`, `;`, `&&`, `||`, redirections). `#` at the start of a word begins a
//! comment. Command substitution and background jobs are refused, not misread.

/// One piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text; `quoted` when it came from quotes or a backslash (no tilde or glob expansion).
    Lit {
        /// The text.
        text: String,
        /// Whether it was quoted.
        quoted: bool,
    },
    /// `$NAME`, `${NAME}`, `$?`, `$$`, `$#`, `$0`…`$9`.
    Var {
        /// The variable's name.
        name: String,
    },
}

/// A word: its pieces, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Word(pub Vec<Part>);

impl Word {
    /// A word of unquoted literal text.
    pub fn lit(s: &str) -> Word {
        Word(vec![Part::Lit { text: s.to_string(), quoted: false }])
    }

    fn push_char(&mut self, c: char, quoted: bool) {
        if let Some(Part::Lit { text, quoted: q }) = self.0.last_mut() {
            if *q == quoted {
                text.push(c);
                return;
            }
        }
        self.0.push(Part::Lit { text: c.to_string(), quoted });
    }

    /// The word's text if it has no variables and no quoting.
    pub fn plain(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.0 {
            match p {
                Part::Lit { text, quoted: false } => s.push_str(text),
                _ => return None,
            }
        }
        Some(s)
    }
}

/// How a redirection opens its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirOp {
    /// `<`
    Read,
    /// `>`
    Write,
    /// `>>`
    Append,
    /// `N>&M`: a copy of descriptor M.
    Dup(u8),
}

/// A token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A word.
    Word(Word),
    /// `|`
    Pipe,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `;` (or the end of a line in a script)
    Semi,
    /// A redirection of descriptor `fd` (0 for `<`, 1 for `>` unless a number precedes it).
    Redir {
        /// The descriptor redirected.
        fd: u8,
        /// How.
        op: RedirOp,
    },
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Reads a `$…` expansion after the `$` (at `chars[*i]`), into `w`.
fn dollar(chars: &[char], i: &mut usize, w: &mut Word, quoted: bool) -> Result<(), String> {
    match chars.get(*i) {
        Some('(') => Err("command substitution $( ) is not supported".into()),
        Some('{') => {
            let start = *i + 1;
            let end = chars[start..].iter().position(|&c| c == '}').ok_or("unterminated ${")? + start;
            let name: String = chars[start..end].iter().collect();
            if name.is_empty() || !(name.chars().all(is_name) || name == "?" || name == "$" || name == "#") {
                return Err(format!("bad substitution ${{{name}}}"));
            }
            *i = end + 1;
            w.0.push(Part::Var { name });
            Ok(())
        }
        Some(&c) if c == '?' || c == '$' || c == '#' || c.is_ascii_digit() => {
            *i += 1;
            w.0.push(Part::Var { name: c.to_string() });
            Ok(())
        }
        Some(&c) if is_name_start(c) => {
            let start = *i;
            while chars.get(*i).is_some_and(|&c| is_name(c)) {
                *i += 1;
            }
            w.0.push(Part::Var { name: chars[start..*i].iter().collect() });
            Ok(())
        }
        // A lone `$` is itself.
        _ => {
            w.push_char('$', quoted);
            Ok(())
        }
    }
}

/// Splits a line into tokens.
pub fn lex(line: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut word: Option<Word> = None;
    let mut i = 0;
    macro_rules! end_word {
        () => {
            if let Some(w) = word.take() {
                out.push(Token::Word(w));
            }
        };
    }
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                end_word!();
                i += 1;
            }
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_with(Word::default);
                let end = chars[i + 1..].iter().position(|&c| c == '\'').ok_or("unterminated single quote")? + i + 1;
                if end == i + 1 {
                    w.0.push(Part::Lit { text: String::new(), quoted: true });
                }
                for &ch in &chars[i + 1..end] {
                    w.push_char(ch, true);
                }
                i = end + 1;
            }
            '"' => {
                let w = word.get_or_insert_with(Word::default);
                w.0.push(Part::Lit { text: String::new(), quoted: true });
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated double quote".into()),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') if matches!(chars.get(i + 1), Some('$' | '"' | '\\' | '`')) => {
                            w.push_char(chars[i + 1], true);
                            i += 2;
                        }
                        Some('$') => {
                            i += 1;
                            dollar(&chars, &mut i, w, true)?;
                        }
                        Some('`') => return Err("command substitution ` ` is not supported".into()),
                        Some(&ch) => {
                            w.push_char(ch, true);
                            i += 1;
                        }
                    }
                }
            }
            '\\' => {
                let w = word.get_or_insert_with(Word::default);
                match chars.get(i + 1) {
                    Some(&ch) => w.push_char(ch, true),
                    None => return Err("a backslash ends the line".into()),
                }
                i += 2;
            }
            '$' => {
                let w = word.get_or_insert_with(Word::default);
                i += 1;
                dollar(&chars, &mut i, w, false)?;
            }
            '`' => return Err("command substitution ` ` is not supported".into()),
            '|' | '&' | ';' => {
                end_word!();
                let next = chars.get(i + 1).copied();
                let (tok, len) = match (c, next) {
                    ('|', Some('|')) => (Token::Or, 2),
                    ('|', _) => (Token::Pipe, 1),
                    ('&', Some('&')) => (Token::And, 2),
                    ('&', Some('>')) => return Err("&> is not supported (use > FILE 2>&1)".into()),
                    ('&', _) => return Err("background jobs (&) are not supported".into()),
                    _ => (Token::Semi, 1),
                };
                out.push(tok);
                i += len;
            }
            '<' | '>' => {
                // A word of one digit right before it names the descriptor.
                let fd = match &word {
                    Some(w) if w.plain().is_some_and(|s| s.len() == 1 && s.as_bytes()[0].is_ascii_digit()) => {
                        let d = w.plain().and_then(|s| s.parse::<u8>().ok()).unwrap_or(0);
                        word = None;
                        if d > 2 {
                            return Err(format!("descriptor {d}: only 0, 1 and 2 can be redirected"));
                        }
                        d
                    }
                    _ => {
                        end_word!();
                        u8::from(c == '>')
                    }
                };
                i += 1;
                let op = if c == '<' {
                    RedirOp::Read
                } else if chars.get(i) == Some(&'>') {
                    i += 1;
                    RedirOp::Append
                } else if chars.get(i) == Some(&'&') {
                    let d = chars.get(i + 1).and_then(|d| d.to_digit(10)).filter(|&d| d <= 2);
                    let Some(d) = d else { return Err(">& takes a descriptor 0, 1 or 2 (as in 2>&1)".into()) };
                    i += 2;
                    RedirOp::Dup(d as u8)
                } else {
                    RedirOp::Write
                };
                out.push(Token::Redir { fd, op });
            }
            _ => {
                word.get_or_insert_with(Word::default).push_char(c, false);
                i += 1;
            }
        }
    }
    end_word!();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str, quoted: bool) -> Part {
        Part::Lit { text: s.into(), quoted }
    }

    #[test]
    fn words_operators_and_quotes() {
        let t = lex("echo a | tr a b > f; cat f").unwrap();
        assert_eq!(t.len(), 11);
        assert_eq!(t[2], Token::Pipe);
        assert_eq!(t[6], Token::Redir { fd: 1, op: RedirOp::Write });
        assert_eq!(t[8], Token::Semi);
        let t = lex(r#"echo 'a b' "c $HOME d" e\ f x2>>log 2>&1 && false || true"#).unwrap();
        assert_eq!(t[1], Token::Word(Word(vec![lit("a b", true)])));
        assert_eq!(t[2], Token::Word(Word(vec![lit("c ", true), Part::Var { name: "HOME".into() }, lit(" d", true)])));
        assert_eq!(t[3], Token::Word(Word(vec![lit("e", false), lit(" ", true), lit("f", false)])));
        // `x2` is a word, not a descriptor.
        assert_eq!(t[4], Token::Word(Word::lit("x2")));
        assert_eq!(t[5], Token::Redir { fd: 1, op: RedirOp::Append });
        assert_eq!(t[7], Token::Redir { fd: 2, op: RedirOp::Dup(1) });
        assert_eq!(t[8], Token::And);
        assert_eq!(t[10], Token::Or);
        assert_eq!(lex("echo $? ${X} $").unwrap()[3], Token::Word(Word::lit("$")));
        assert_eq!(lex("ls # comment | x").unwrap().len(), 1);
        assert_eq!(lex("''").unwrap(), vec![Token::Word(Word(vec![lit("", true)]))]);
    }

    #[test]
    fn refusals() {
        for (line, why) in [
            ("echo 'a", "unterminated single quote"),
            ("echo \"a", "unterminated double quote"),
            ("echo $(ls)", "command substitution"),
            ("echo `ls`", "command substitution"),
            ("sleep 1 &", "background jobs"),
            ("echo 5>x", "only 0, 1 and 2"),
            ("echo >&x", ">& takes a descriptor"),
            ("echo ${a-b}", "bad substitution"),
            ("echo \\", "backslash ends"),
        ] {
            assert!(lex(line).unwrap_err().contains(why), "{line}");
        }
    }
}
