//! The commands `lsh` runs itself: `cd`, `pwd`, `export`, `unset`, `exit`, `help`.

use super::exec::{Flow, Shell};
use std::io::Write;
use std::path::PathBuf;

const BUILTINS: &[&str] = &["cd", "pwd", "export", "unset", "exit", "help"];

/// Whether `name` is a builtin.
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// The builtins' names (for completion).
pub fn names() -> &'static [&'static str] {
    BUILTINS
}

fn valid_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Runs a builtin, writing to `out` and `err`; sets `$?`.
pub fn run(sh: &mut Shell, argv: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Flow {
    let args = &argv[1..];
    let mut fail = |msg: String| {
        let _ = writeln!(err, "lsh: {}: {msg}", argv[0]);
        1
    };
    let status = match argv[0].as_str() {
        "cd" => {
            let target = match args {
                [] => sh.vars.get("HOME").filter(|h| !h.is_empty()).ok_or("HOME is not set"),
                [d] if d == "-" => sh.vars.get("OLDPWD").ok_or("OLDPWD is not set"),
                [d] => Ok(d.clone()),
                _ => Err("too many arguments"),
            };
            match target {
                Err(e) => fail(e.into()),
                Ok(dir) => {
                    let old = std::env::current_dir().ok();
                    match std::env::set_current_dir(&dir) {
                        Err(e) => fail(format!("{dir}: {}", e.to_string().split(" (os error").next().unwrap_or(""))),
                        Ok(()) => {
                            if let Some(o) = old {
                                sh.vars.set("OLDPWD", o.display().to_string());
                            }
                            let now = std::env::current_dir().unwrap_or_else(|_| PathBuf::from(&dir));
                            sh.vars.set("PWD", now.display().to_string());
                            if args.first().is_some_and(|a| a == "-") {
                                let _ = writeln!(out, "{}", now.display());
                            }
                            0
                        }
                    }
                }
            }
        }
        "pwd" => match std::env::current_dir() {
            Ok(d) => {
                let _ = writeln!(out, "{}", d.display());
                0
            }
            Err(e) => fail(e.to_string()),
        },
        "export" if args.is_empty() => {
            for l in sh.vars.exported_list() {
                let _ = writeln!(out, "{l}");
            }
            0
        }
        "export" | "unset" => {
            let mut st = 0;
            for a in args {
                let (name, value) = match a.split_once('=') {
                    Some((n, v)) if argv[0] == "export" => (n, Some(v)),
                    _ => (a.as_str(), None),
                };
                if !valid_name(name) {
                    st = fail(format!("{name:?}: not a valid variable name"));
                    continue;
                }
                if argv[0] == "unset" {
                    sh.vars.unset(name);
                    continue;
                }
                if let Some(v) = value {
                    sh.vars.set(name, v.to_string());
                }
                sh.vars.export(name);
            }
            st
        }
        "exit" => match args {
            [] => return Flow::Exit(sh.vars.status),
            [n] => match n.parse::<i32>() {
                Ok(n) => return Flow::Exit(n & 0xff),
                Err(_) => fail(format!("{n}: a number is needed")),
            },
            _ => fail("too many arguments".into()),
        },
        _ => {
            let _ = writeln!(
                out,
                "lsh, the Llama Shell. Commands, pipelines (|), lists (; && ||), redirections (< > >> 2> 2>&1),\n\
                 quotes, $VAR, $?, ~ and globs; builtins: {}.\n\
                 A line starting with ? (or `llama `) is a request in plain words: the model proposes one\n\
                 command, shown before anything runs; you choose to run, edit, explain or abort it.",
                BUILTINS.join(", ")
            );
            0
        }
    };
    sh.vars.status = status;
    Flow::Next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_it(sh: &mut Shell, argv: &[&str]) -> (Flow, String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let f = run(sh, &argv, &mut o, &mut e);
        (f, String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
    }

    #[test]
    fn export_unset_exit() {
        let mut sh = Shell::new(vec!["lsh".into()], None);
        let (_, _, e) = run_it(&mut sh, &["export", "A=1", "9x=2"]);
        assert!(e.contains("not a valid variable name"));
        assert_eq!(sh.vars.status, 1);
        assert_eq!(sh.vars.get("A").as_deref(), Some("1"));
        let (_, o, _) = run_it(&mut sh, &["export"]);
        assert!(o.lines().any(|l| l == "export A=1"), "{o}");
        run_it(&mut sh, &["unset", "A"]);
        assert_eq!(sh.vars.get("A"), None);
        assert_eq!(run_it(&mut sh, &["exit", "3"]).0, Flow::Exit(3));
        assert_eq!(run_it(&mut sh, &["exit", "x"]).0, Flow::Next);
        assert_eq!(sh.vars.status, 1);
        let (_, _, e) = run_it(&mut sh, &["cd", "/definitely/not/here"]);
        assert!(e.contains("No such file or directory"), "{e}");
        assert!(run_it(&mut sh, &["help"]).1.contains("Llama Shell"));
    }
}
