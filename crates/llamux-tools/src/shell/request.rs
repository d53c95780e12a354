//! `?` requests: plain words become one proposed command. Facts first: a request that names one
//! of `llama`'s allowlisted actions ("kill the process eating my CPU") is resolved by the same
//! rules against fresh measurements, into the equivalent command with the measured pid; anything
//! else goes to the model, which is asked for one command line and nothing else. What comes back
//! is only shown: the shell runs it only after the user chooses to.

use super::parse::parse;
use crate::{action, intent, probe};
use llamux_client::{Backend, ClientError, Config, Message, Request, Role};
use std::time::Duration;

/// Where a proposal came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The rules and the measurements; with what the action does.
    Measured(String),
    /// The model.
    Model,
}

/// A proposed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The command line.
    pub command: String,
    /// Who proposed it.
    pub source: Source,
}

const SYSTEM: &str = "You turn a request into exactly one Linux shell command. Answer with the command only, \
on one line: no explanation, no quotes, no backticks.";
const EXAMPLES: &[(&str, &str)] = &[
    ("list the files in this directory with their sizes", "ls -l"),
    ("make a directory called build", "mkdir build"),
    ("create an empty file called notes.md", "touch notes.md"),
    ("show the word hello", "echo hello"),
    ("find the lines containing error in app.log", "grep error app.log"),
    ("how much disk space is free", "df -h"),
    ("which processes use the most memory", "ps aux --sort=-rss | head"),
];

/// The start of a line that makes it a request, and the request.
pub fn request_text(line: &str) -> Option<&str> {
    let t = line.trim_start();
    t.strip_prefix('?').or_else(|| t.strip_prefix("llama ")).map(str::trim)
}

/// The proposal's command line out of a model's answer: its first non-empty line, without
/// backticks, a `$ ` prompt or a language tag.
pub fn clean(answer: &str) -> Option<String> {
    let line = answer.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("```"))?.trim_matches('`').trim();
    let line = line.strip_prefix("$ ").unwrap_or(line).trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// Words that make a proposal worth a second look.
pub fn caution(command: &str) -> Option<&'static str> {
    let words: Vec<&str> = command.split(|c: char| c.is_whitespace() || c == ';' || c == '|').collect();
    let has = |w: &str| words.contains(&w);
    if has("rm") || has("rmdir") || has("shred") || has("mkfs") || has("dd") {
        Some("it deletes or overwrites data")
    } else if has("sudo") || has("su") || has("chmod") || has("chown") {
        Some("it changes privileges or permissions")
    } else if has("kill") || has("pkill") || has("killall") || has("reboot") || has("shutdown") || has("poweroff") {
        Some("it stops processes or the machine")
    } else if command.contains('>') {
        Some("it writes to a file")
    } else {
        None
    }
}

/// What a request proposes: an allowlisted action measured now, else the model's command.
/// `Ok(Err(why))`: no command (an action with nothing to act on, or an unusable answer).
pub fn propose(
    cfg: &Config,
    backend: &mut dyn Backend,
    request: &str,
) -> Result<Result<Proposal, String>, ClientError> {
    // Only a request that is an action at all is worth measuring for.
    if intent::classify(request, &probe::Snapshot::default(), &[]) != intent::Intent::Question {
        let exclude = probe::ancestors(std::process::id());
        let snap = probe::snapshot(Duration::from_millis(cfg.tools.sample_ms));
        let it = intent::classify(request, &snap, &exclude);
        match action::resolve(&it, &snap, &exclude) {
            Ok(Some(act)) => {
                return Ok(Ok(Proposal { command: act.command(), source: Source::Measured(act.describe()) }))
            }
            Ok(None) => {}
            Err(why) => return Ok(Err(why)),
        }
    }
    let mut messages = vec![Message::new(Role::System, SYSTEM)];
    for (q, a) in EXAMPLES {
        messages.push(Message::new(Role::User, *q));
        messages.push(Message::new(Role::Assistant, *a));
    }
    messages.push(Message::new(Role::User, request));
    let mut req = Request::chat(cfg, messages);
    req.max_tokens = req.max_tokens.min(48);
    // One line; a command repeats its own words ("mkdir out && cd out"), so no penalty for that.
    req.stop = vec!["\n".into()];
    req.sampling.repeat_penalty = 1.0;
    let out = backend.generate(&req, &mut |_| Ok(()))?;
    // A small model that does not end its line has lost its way (it repeats itself).
    if out.finish == llamux_client::Finish::Length && !out.text.contains('\n') {
        let start: String = out.text.trim().chars().take(60).collect();
        return Ok(Err(format!("the model did not give one short command (it went on: {start}…)")));
    }
    Ok(match clean(&out.text) {
        Some(cmd) => match parse(&cmd) {
            Ok(list) if !list.is_empty() => Ok(Proposal { command: cmd, source: Source::Model }),
            Ok(_) => Err("the model proposed no command".into()),
            Err(e) => Err(format!("the model's answer is not a command lsh can run ({e}): {cmd}")),
        },
        None => Err(format!("the model proposed no command (it said {:?})", out.text.trim())),
    })
}

/// Streams the model's one- or two-sentence explanation of `command` to `sink`.
pub fn explain(
    cfg: &Config,
    backend: &mut dyn Backend,
    command: &str,
    sink: &mut dyn FnMut(&str) -> Result<(), ClientError>,
) -> Result<(), ClientError> {
    let messages = vec![
        Message::new(Role::System, "You explain Linux shell commands in one or two short sentences."),
        Message::new(Role::User, format!("What does this command do?\n{command}")),
    ];
    let mut req = Request::chat(cfg, messages);
    req.max_tokens = req.max_tokens.min(96);
    backend.generate(&req, &mut |t| sink(t))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_answers_and_cautions() {
        assert_eq!(request_text("? list files"), Some("list files"));
        assert_eq!(request_text("  llama kill it"), Some("kill it"));
        assert_eq!(request_text("llamas"), None);
        assert_eq!(request_text("echo ?"), None);
        assert_eq!(clean("```sh\nls -la\n```"), Some("ls -la".into()));
        assert_eq!(clean("`df -h`"), Some("df -h".into()));
        assert_eq!(clean("$ touch a\nmore"), Some("touch a".into()));
        assert_eq!(clean("  \n"), None);
        assert!(caution("rm -rf x").is_some());
        assert!(caution("echo hi > f").is_some());
        assert!(caution("kill -TERM 42").is_some());
        assert_eq!(caution("ls -l"), None);
    }
}
