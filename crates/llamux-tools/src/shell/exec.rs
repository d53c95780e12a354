//! Running parsed lines: lists (`;`, `&&`, `||`), pipelines (one process per command, connected by
//! pipes, in one process group when interactive), redirections applied in order (`2>&1 > f`
//! differs from `> f 2>&1`, as in sh), and builtins run in the shell itself.

use super::builtins;
use super::expand::{self, Vars};
use super::job::Terminal;
use super::lex::RedirOp;
use super::parse::{parse, Cmd, Join, List, Pipeline, Redir};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};

/// What the caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next line.
    Next,
    /// Leave with this status.
    Exit(i32),
}

/// The shell's state.
pub struct Shell {
    /// Variables, `$?`, positional arguments.
    pub vars: Vars,
    /// The terminal, when interactive.
    pub term: Option<Terminal>,
}

/// Where descriptors 0, 1 and 2 of a command go (`None`: the shell's own).
type Slots = [Option<OwnedFd>; 3];

/// The status a finished process leaves in `$?` (128 + N for signal N).
pub fn status_of(st: ExitStatus) -> i32 {
    st.code().or_else(|| st.signal().map(|s| 128 + s)).unwrap_or(1)
}

fn io_msg(e: &std::io::Error) -> String {
    // "No such file or directory (os error 2)" -> "No such file or directory".
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

impl Shell {
    /// A shell with the process environment and these positional arguments (`$0` first).
    pub fn new(args: Vec<String>, term: Option<Terminal>) -> Shell {
        Shell { vars: Vars::from_env(args), term }
    }

    /// Parses and runs one line; a syntax error sets `$?` to 2 and is returned.
    pub fn run_line(&mut self, line: &str) -> Result<Flow, String> {
        match parse(line) {
            Ok(list) => Ok(self.run_list(&list)),
            Err(e) => {
                self.vars.status = 2;
                Err(e)
            }
        }
    }

    /// Runs a list.
    pub fn run_list(&mut self, list: &List) -> Flow {
        let mut join = Join::Then;
        for (pipeline, next) in list {
            let run = match join {
                Join::Then => true,
                Join::And => self.vars.status == 0,
                Join::Or => self.vars.status != 0,
            };
            if run {
                if let Flow::Exit(n) = self.run_pipeline(pipeline) {
                    return Flow::Exit(n);
                }
            }
            join = *next;
        }
        Flow::Next
    }

    fn argv(&self, c: &Cmd) -> Vec<String> {
        c.words.iter().flat_map(|w| expand::expand(w, &self.vars)).collect()
    }

    /// Applies `redirs` in order over `slots`.
    fn redirect(&self, redirs: &[Redir], slots: &mut Slots) -> Result<(), String> {
        for r in redirs {
            let fd = usize::from(r.fd);
            let opened = match r.op {
                RedirOp::Dup(m) => {
                    let copy = match &slots[usize::from(m)] {
                        Some(f) => f.try_clone(),
                        None => match m {
                            0 => std::io::stdin().as_fd().try_clone_to_owned(),
                            1 => std::io::stdout().as_fd().try_clone_to_owned(),
                            _ => std::io::stderr().as_fd().try_clone_to_owned(),
                        },
                    };
                    copy.map_err(|e| format!("{}>&{m}: {}", r.fd, io_msg(&e)))?
                }
                op => {
                    let path = expand::expand_one(&r.target, &self.vars);
                    if path.is_empty() {
                        return Err("a redirection's file name is empty".into());
                    }
                    let mut o = OpenOptions::new();
                    match op {
                        RedirOp::Read => o.read(true),
                        RedirOp::Append => o.append(true).create(true).mode(0o666),
                        _ => o.write(true).create(true).truncate(true).mode(0o666),
                    };
                    OwnedFd::from(o.open(&path).map_err(|e| format!("{path}: {}", io_msg(&e)))?)
                }
            };
            slots[fd] = Some(opened);
        }
        Ok(())
    }

    fn run_pipeline(&mut self, p: &Pipeline) -> Flow {
        if let [c] = p.as_slice() {
            let argv = self.argv(c);
            if argv.is_empty() {
                return self.assign_only(c);
            }
            if builtins::is_builtin(&argv[0]) {
                return self.builtin(c, &argv);
            }
        }
        self.vars.status = self.spawn_pipeline(p);
        Flow::Next
    }

    /// `NAME=VALUE` alone sets shell variables (redirections are still made, as in sh).
    fn assign_only(&mut self, c: &Cmd) -> Flow {
        let mut slots: Slots = [None, None, None];
        if let Err(e) = self.redirect(&c.redirs, &mut slots) {
            eprintln!("lsh: {e}");
            self.vars.status = 1;
            return Flow::Next;
        }
        for (k, w) in &c.assigns {
            let v = expand::expand_one(w, &self.vars);
            self.vars.set(k, v);
        }
        self.vars.status = 0;
        Flow::Next
    }

    fn builtin(&mut self, c: &Cmd, argv: &[String]) -> Flow {
        let mut slots: Slots = [None, None, None];
        if let Err(e) = self.redirect(&c.redirs, &mut slots) {
            eprintln!("lsh: {e}");
            self.vars.status = 1;
            return Flow::Next;
        }
        let [_, out, err] = slots;
        let mut out: Box<dyn Write> = match out {
            Some(f) => Box::new(File::from(f)),
            None => Box::new(std::io::stdout()),
        };
        let mut err: Box<dyn Write> = match err {
            Some(f) => Box::new(File::from(f)),
            None => Box::new(std::io::stderr()),
        };
        let flow = builtins::run(self, argv, &mut out, &mut err);
        let _ = out.flush();
        flow
    }

    /// Starts every command of the pipeline and waits for all; the last one's status.
    fn spawn_pipeline(&mut self, p: &Pipeline) -> i32 {
        let mut children: Vec<Child> = Vec::new();
        let mut next_in: Option<OwnedFd> = None;
        let mut pgid: libc::pid_t = 0;
        let mut last_status = 0;
        for (i, c) in p.iter().enumerate() {
            let last = i + 1 == p.len();
            let mut slots: Slots = [next_in.take(), None, None];
            if !last {
                match std::io::pipe() {
                    Ok((r, w)) => {
                        next_in = Some(r.into());
                        slots[1] = Some(w.into());
                    }
                    Err(e) => {
                        eprintln!("lsh: cannot make a pipe: {}", io_msg(&e));
                        last_status = 1;
                        break;
                    }
                }
            }
            last_status = match self.spawn(c, slots, pgid) {
                Ok(child) => {
                    if pgid == 0 {
                        pgid = child.id() as libc::pid_t;
                        if let Some(t) = &self.term {
                            t.give(pgid);
                        }
                    }
                    children.push(child);
                    0
                }
                Err((msg, status)) => {
                    eprintln!("lsh: {msg}");
                    status
                }
            };
        }
        drop(next_in);
        let n = children.len();
        let mut last_child_status = None;
        for (i, mut child) in children.into_iter().enumerate() {
            let st = child.wait().map(status_of).unwrap_or(1);
            if i + 1 == n {
                last_child_status = Some(st);
            }
        }
        if let Some(t) = &self.term {
            t.reclaim();
        }
        // The last command's status, unless it could not start.
        match (p.len() == n, last_child_status) {
            (true, Some(st)) => {
                if st == 128 + libc::SIGINT && self.term.is_some() {
                    println!();
                }
                st
            }
            _ => last_status.max(1),
        }
    }

    fn spawn(&self, c: &Cmd, mut slots: Slots, pgid: libc::pid_t) -> Result<Child, (String, i32)> {
        self.redirect(&c.redirs, &mut slots).map_err(|e| (e, 1))?;
        let argv = self.argv(c);
        let Some(name) = argv.first() else {
            return Err(("a command in a pipeline is empty".into(), 1));
        };
        if builtins::is_builtin(name) {
            return Err((format!("{name}: a builtin cannot be part of a pipeline"), 1));
        }
        let mut cmd = Command::new(name);
        cmd.args(&argv[1..]).env_clear().envs(self.vars.environment());
        for (k, w) in &c.assigns {
            cmd.env(k, expand::expand_one(w, &self.vars));
        }
        let [i, o, e] = slots;
        if let Some(f) = i {
            cmd.stdin(Stdio::from(f));
        }
        if let Some(f) = o {
            cmd.stdout(Stdio::from(f));
        }
        if let Some(f) = e {
            cmd.stderr(Stdio::from(f));
        }
        if let Some(t) = &self.term {
            t.prepare(&mut cmd, pgid);
        }
        cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound if !name.contains('/') => (format!("{name}: command not found"), 127),
            std::io::ErrorKind::NotFound => (format!("{name}: No such file or directory"), 127),
            std::io::ErrorKind::PermissionDenied => (format!("{name}: Permission denied"), 126),
            _ => (format!("{name}: {}", io_msg(&e)), 126),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh_in(dir: &std::path::Path) -> Shell {
        let mut sh = Shell::new(vec!["lsh".into()], None);
        sh.vars.set("D", dir.display().to_string());
        sh
    }

    fn read(p: std::path::PathBuf) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn pipelines_redirections_and_status() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut sh = sh_in(d);
        assert_eq!(sh.run_line("echo a | tr a b > $D/f; cat $D/f > $D/g"), Ok(Flow::Next));
        assert_eq!(read(d.join("g")), "b\n");
        sh.run_line("echo one >> $D/g; echo two >>$D/g").unwrap();
        assert_eq!(read(d.join("g")), "b\none\ntwo\n");
        sh.run_line("tr a-z A-Z < $D/g > $D/h").unwrap();
        assert_eq!(read(d.join("h")), "B\nONE\nTWO\n");
        // stderr into the file, in order.
        sh.run_line("ls $D/missing > $D/e 2>&1").unwrap();
        assert_ne!(sh.vars.status, 0);
        assert!(read(d.join("e")).contains("missing"));
        sh.run_line("ls $D/missing 2> $D/e2 | cat > $D/o2").unwrap();
        assert!(read(d.join("e2")).contains("missing"));
        assert_eq!(read(d.join("o2")), "");
        // $?, &&, ||.
        sh.run_line("false; echo $? > $D/s").unwrap();
        assert_eq!(read(d.join("s")), "1\n");
        sh.run_line("false && echo no > $D/x || echo yes > $D/y").unwrap();
        assert!(!d.join("x").exists());
        assert_eq!(read(d.join("y")), "yes\n");
        sh.run_line("definitely-not-a-command-lsh").unwrap();
        assert_eq!(sh.vars.status, 127);
        sh.run_line("sh -c 'kill -TERM $$'").unwrap();
        assert_eq!(sh.vars.status, 128 + libc::SIGTERM);
        sh.run_line("cat < $D/nope").unwrap();
        assert_eq!(sh.vars.status, 1);
        assert_eq!(sh.run_line("echo 'x"), Err("unterminated single quote".into()));
        assert_eq!(sh.vars.status, 2);
    }

    #[test]
    fn variables_reach_commands_only_when_exported() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut sh = sh_in(d);
        sh.run_line("X=local; sh -c 'echo \"[$X]\"' > $D/a; echo \"$X\" > $D/b").unwrap();
        assert_eq!(read(d.join("a")), "[]\n");
        assert_eq!(read(d.join("b")), "local\n");
        sh.run_line("export X; Y=only-here sh -c 'echo $X $Y' > $D/c").unwrap();
        assert_eq!(read(d.join("c")), "local only-here\n");
        assert_eq!(sh.vars.get("Y"), None);
        assert_eq!(sh.run_line("exit 7"), Ok(Flow::Exit(7)));
    }
}
