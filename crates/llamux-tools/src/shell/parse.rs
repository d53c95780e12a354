//! `lsh`'s grammar: a line is a list of pipelines joined by `;`, `&&` and `||`; a pipeline is
//! commands joined by `|`; a command is `NAME=VALUE` assignments, words and redirections.

use super::lex::{lex, Part, RedirOp, Token, Word};

/// A redirection: descriptor `fd` to a file (or, for `Dup`, another descriptor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redir {
    /// The descriptor (0, 1 or 2).
    pub fd: u8,
    /// How.
    pub op: RedirOp,
    /// The file (empty for `Dup`).
    pub target: Word,
}

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cmd {
    /// `NAME=VALUE` before the command (variables for it; for the shell when there is no command).
    pub assigns: Vec<(String, Word)>,
    /// The command and its arguments.
    pub words: Vec<Word>,
    /// Redirections, in order.
    pub redirs: Vec<Redir>,
}

/// Commands joined by `|`.
pub type Pipeline = Vec<Cmd>;

/// What decides whether the next pipeline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// `;`: always.
    Then,
    /// `&&`: when this one succeeded.
    And,
    /// `||`: when this one failed.
    Or,
}

/// Pipelines, each with what joins it to the next.
pub type List = Vec<(Pipeline, Join)>;

/// `NAME=` at the start of a word: the name and the rest of the word.
fn assignment(w: &Word) -> Option<(String, Word)> {
    let Some(Part::Lit { text, quoted: false }) = w.0.first() else { return None };
    let (name, rest) = text.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_') || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let mut value = Word(w.0[1..].to_vec());
    if !rest.is_empty() {
        value.0.insert(0, Part::Lit { text: rest.to_string(), quoted: false });
    }
    Some((name.to_string(), value))
}

fn describe(t: &Token) -> &'static str {
    match t {
        Token::Pipe => "|",
        Token::And => "&&",
        Token::Or => "||",
        Token::Semi => ";",
        Token::Redir { .. } => "a redirection",
        Token::Word(_) => "a word",
    }
}

/// Parses a line (empty: an empty list).
pub fn parse(line: &str) -> Result<List, String> {
    let tokens = lex(line)?;
    let mut list = List::new();
    let mut pipeline = Pipeline::new();
    let mut cmd = Cmd::default();
    let mut it = tokens.into_iter().peekable();
    let empty = |c: &Cmd| c.words.is_empty() && c.assigns.is_empty() && c.redirs.is_empty();
    while let Some(t) = it.next() {
        match t {
            Token::Word(w) => {
                if cmd.words.is_empty() {
                    if let Some(a) = assignment(&w) {
                        cmd.assigns.push(a);
                        continue;
                    }
                }
                cmd.words.push(w);
            }
            Token::Redir { fd, op: RedirOp::Dup(d) } => {
                cmd.redirs.push(Redir { fd, op: RedirOp::Dup(d), target: Word::default() })
            }
            Token::Redir { fd, op } => match it.next() {
                Some(Token::Word(target)) => cmd.redirs.push(Redir { fd, op, target }),
                Some(other) => return Err(format!("syntax error: a file name was expected, not {}", describe(&other))),
                None => return Err("syntax error: a file name was expected after the redirection".into()),
            },
            Token::Pipe => {
                if empty(&cmd) {
                    return Err("syntax error near |".into());
                }
                pipeline.push(std::mem::take(&mut cmd));
                if it.peek().is_none() {
                    return Err("syntax error: the line ends with |".into());
                }
            }
            Token::Semi | Token::And | Token::Or => {
                let join = match t {
                    Token::And => Join::And,
                    Token::Or => Join::Or,
                    _ => Join::Then,
                };
                if empty(&cmd) {
                    if join == Join::Then && pipeline.is_empty() && list.is_empty() && it.peek().is_none() {
                        return Err("syntax error near ;".into());
                    }
                    return Err(format!("syntax error near {}", describe(&t)));
                }
                pipeline.push(std::mem::take(&mut cmd));
                list.push((std::mem::take(&mut pipeline), join));
                if join != Join::Then && it.peek().is_none() {
                    return Err(format!("syntax error: the line ends with {}", describe(&t)));
                }
            }
        }
    }
    if !empty(&cmd) {
        pipeline.push(cmd);
        list.push((pipeline, Join::Then));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_pipelines_and_commands() {
        let l = parse("echo a | tr a b > f; cat f").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].0.len(), 2);
        assert_eq!(l[0].0[1].words, vec![Word::lit("tr"), Word::lit("a"), Word::lit("b")]);
        assert_eq!(l[0].0[1].redirs, vec![Redir { fd: 1, op: RedirOp::Write, target: Word::lit("f") }]);
        assert_eq!(l[1].0[0].words, vec![Word::lit("cat"), Word::lit("f")]);
        let l = parse("A=1 B= env x=y && false || true").unwrap();
        assert_eq!(l.iter().map(|p| p.1).collect::<Vec<_>>(), vec![Join::And, Join::Or, Join::Then]);
        let c = &l[0].0[0];
        assert_eq!(c.assigns, vec![("A".into(), Word::lit("1")), ("B".into(), Word::default())]);
        assert_eq!(c.words, vec![Word::lit("env"), Word::lit("x=y")]);
        assert!(parse("").unwrap().is_empty());
        assert!(parse("   # nothing").unwrap().is_empty());
        assert_eq!(parse("true;").unwrap().len(), 1);
        assert_eq!(parse("2>&1 >/dev/null ls").unwrap()[0].0[0].redirs.len(), 2);
    }

    #[test]
    fn syntax_errors() {
        for (line, why) in [
            ("| x", "near |"),
            ("x |", "ends with |"),
            ("x | | y", "near |"),
            ("x &&", "ends with &&"),
            ("&& x", "near &&"),
            (";", "near ;"),
            ("x ; ; y", "near ;"),
            ("cat <", "file name was expected"),
            ("cat > | y", "file name was expected"),
        ] {
            assert!(parse(line).unwrap_err().contains(why), "{line}: {:?}", parse(line));
        }
    }
}
