//! `llama` against a real CPU hog started by the test: the question names the hog's pid, command
//! and CPU share; the request to kill "the process eating my CPU" proposes signalling exactly that
//! pid, driven through a pseudo-terminal: `n` (and a bare Enter) leave it running, `y` ends it,
//! `--dry-run` only shows; the audit log records every proposal and decision. The tests here run
//! one at a time (a hog measured by one must not be another's noise).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[path = "../../llamux-core/tests/common/mod.rs"]
mod common;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A busy process, killed when dropped: the `cpu_hog` example (a spinning thread per CPU, so
/// that it stands out even on a busy machine), built with the tests.
struct Hog(Child);

const HOG: &str = "cpu_hog";

fn hog_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/llama-HASH -> target/<profile>/examples/cpu_hog
    let p = exe.parent().and_then(Path::parent).unwrap().join("examples").join(HOG);
    assert!(p.exists(), "{} is missing: build the examples (cargo test -p llamux-tools builds them)", p.display());
    p
}

impl Hog {
    /// Four spinning threads per CPU: a busy machine's single-threaded processes do not outrank it.
    fn start() -> Hog {
        Hog::with_threads_per_cpu(4)
    }

    fn with_threads_per_cpu(per_cpu: usize) -> Hog {
        let threads = per_cpu * std::thread::available_parallelism().map_or(1, |n| n.get());
        let child = Command::new(hog_binary())
            .arg(threads.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it accumulate CPU time before anyone measures.
        std::thread::sleep(Duration::from_millis(300));
        Hog(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// Waits (up to 5 s) for it to end; its signal.
    fn ended_by(&mut self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st.signal();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { dir: tempfile::tempdir().unwrap() }
    }

    fn audit(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.audit())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_llama"));
        c.args(["--sample-ms", "400"])
            .args(args)
            .env("LLAMUX_CONFIG", "")
            .env("LLAMUX_AUDIT_LOG", self.audit())
            .env("LLAMUX_STATE_DIR", self.dir.path())
            .env("LLAMUX_ACT_BIN", env!("CARGO_BIN_EXE_llamux-act"))
            .env("LLAMUX_CACHE", self.dir.path().join("cache"));
        c
    }
}

/// The `pid N \`comm\` uses P% of one CPU` finding for `pid`: its share.
fn cpu_share_of(out: &str, pid: u32, comm: &str) -> Option<f64> {
    let needle = format!("pid {pid} `{comm}` uses ");
    let line = out.lines().find(|l| l.contains(&needle))?;
    let rest = &line[line.find(&needle)? + needle.len()..];
    rest.split('%').next()?.parse().ok()
}

fn model() -> Option<PathBuf> {
    common::asset("LLAMUX_SMOLLM2")
}

#[test]
fn the_question_names_the_hog_with_its_cpu_share() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    // One thread per CPU: the model explaining it must not starve.
    let hog = Hog::with_threads_per_cpu(1);
    let model = model();
    let mut args = vec!["--backend", "in-process"];
    let m;
    match &model {
        Some(p) => {
            m = p.to_string_lossy().into_owned();
            args.extend(["-m", m.as_str()]);
        }
        None => args.push("--no-model"),
    }
    args.push("why is my system slow?");
    let out = env.command(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let share =
        cpu_share_of(&stdout, hog.pid(), HOG).unwrap_or_else(|| panic!("hog {} not named:\n{stdout}", hog.pid()));
    assert!(share >= 20.0, "the hog's share is {share}%:\n{stdout}");
    // Findings come first, the explanation after them.
    let findings_at = stdout.find("Findings").unwrap();
    if model.is_some() {
        let explanation_at = stdout.find("Explanation (").unwrap_or_else(|| panic!("no explanation:\n{stdout}"));
        assert!(findings_at < explanation_at);
        let explanation = stdout[explanation_at..].lines().skip(1).collect::<String>();
        assert!(!explanation.trim().is_empty(), "the model said nothing:\n{stdout}");
    }
    // A question proposes nothing.
    assert!(!stdout.contains("Proposed action"));
    assert!(env.events().is_empty());
}

fn expect(p: &mut rexpect::session::PtySession, s: &str) -> String {
    p.exp_string(s).unwrap_or_else(|e| panic!("expected {s:?}: {e}"))
}

#[test]
fn kill_is_proposed_for_exactly_the_hog_and_runs_only_after_yes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    let mut hog = Hog::start();
    let proposal = format!("Proposed action: send SIGTERM to pid {} `{HOG}`", hog.pid());

    // `n`: nothing happens.
    let mut p =
        rexpect::session::spawn_command(env.command(&["kill the process eating my CPU"]), Some(20_000)).unwrap();
    expect(&mut p, &proposal);
    expect(&mut p, "Run it? [y/N]");
    p.send_line("n").unwrap();
    expect(&mut p, "Not run.");
    p.exp_eof().unwrap();
    assert!(hog.running(), "answering n must leave the hog running");

    // A bare Enter is No too.
    let mut p =
        rexpect::session::spawn_command(env.command(&["kill the process eating my CPU"]), Some(20_000)).unwrap();
    expect(&mut p, &proposal);
    expect(&mut p, "Run it? [y/N]");
    p.send_line("").unwrap();
    expect(&mut p, "Not run.");
    p.exp_eof().unwrap();
    assert!(hog.running(), "the default must be No");

    // `y`: the hog gets SIGTERM from the confined executor.
    let mut p =
        rexpect::session::spawn_command(env.command(&["kill the process eating my CPU"]), Some(20_000)).unwrap();
    expect(&mut p, &proposal);
    expect(&mut p, "Run it? [y/N]");
    p.send_line("y").unwrap();
    expect(&mut p, &format!("Done: kill -TERM {}", hog.pid()));
    p.exp_eof().unwrap();
    assert_eq!(hog.ended_by(), Some(SIGTERM), "answering y must end the hog with SIGTERM");

    let ev = env.events();
    let decisions: Vec<&str> = ev.iter().map(|e| e["decision"].as_str().unwrap()).collect();
    assert_eq!(decisions, ["proposed", "declined", "proposed", "declined", "proposed", "approved", "executed"]);
    for e in &ev {
        assert_eq!(e["action"]["pid"].as_u64(), Some(u64::from(hog.pid())), "{e}");
        assert_eq!(e["action"]["action"], "signal");
        assert_eq!(e["request"], "kill the process eating my CPU");
    }
    assert_eq!(ev[6]["result"], "ok");
    assert!(ev[6]["sandbox"].as_str().unwrap().contains("seccomp"), "{}", ev[6]);
}

const SIGTERM: i32 = 15;

#[test]
fn dry_run_only_shows() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    let mut hog = Hog::start();
    let out =
        env.command(&["--dry-run", "--yes", "kill the process eating my CPU"]).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(&format!("Proposed action: send SIGTERM to pid {} `{HOG}`", hog.pid())), "{stdout}");
    assert!(stdout.contains("Dry run: nothing was done."));
    std::thread::sleep(Duration::from_millis(200));
    assert!(hog.running());
    let decisions: Vec<String> = env.events().iter().map(|e| e["decision"].as_str().unwrap().to_string()).collect();
    assert_eq!(decisions, ["proposed", "dry-run"]);
}

#[test]
fn without_a_terminal_and_without_yes_nothing_runs() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    let mut hog = Hog::start();
    let out = env.command(&["kill the process eating my CPU"]).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Not run."));
    assert!(hog.running());
    // An unwritable audit log means no action is offered at all.
    let out = env
        .command(&["kill the process eating my CPU"])
        .env("LLAMUX_AUDIT_LOG", "/proc/llamux-no-such-dir/audit.log")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("audit log"), "{stderr}");
    assert!(hog.running());
}

/// The nice value in `/proc/PID/stat`.
fn nice_of(pid: u32) -> i64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(16).unwrap().parse().unwrap()
}

#[test]
fn renice_by_pid_and_drop_caches_are_allowlisted_too() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = Env::new();
    // A sleeping process (no CPU: its priority may be raised to nice 0 first, as root can, so
    // that lowering it is seen even when the tests run under `nice`).
    let mut sleeper = Hog(Command::new("sleep").arg("60").spawn().unwrap());
    let pid = sleeper.pid();
    // SAFETY: setpriority takes plain integers.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, pid, 0) };
    const HOG: &str = "sleep";
    let hog = &mut sleeper;
    let before = nice_of(pid);
    let out =
        env.command(&["--yes", &format!("lower the priority of pid {pid}")]).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let mut expected = vec!["proposed", "approved-by-flag", "executed"];
    if before >= 19 {
        // Started under `nice -n 19`: nothing lower exists, and nothing is proposed.
        assert!(stdout.contains("already runs at the lowest priority (nice 19)"), "{stdout}");
        expected.clear();
    } else {
        // To nice 10, or to 19 when it already runs at 10 or more; never higher.
        let to = if before < 10 { 10 } else { 19 };
        assert!(stdout.contains(&format!("lower the priority of pid {pid} `{HOG}`")), "{stdout}");
        assert!(stdout.contains(&format!("Done: renice -n {to} -p {pid}")), "{stdout}");
        assert_eq!(nice_of(pid), to);
    }
    assert!(hog.running());
    // Dropping the page cache is proposed with what it writes (shown only: it is machine-wide).
    let out = env.command(&["--dry-run", "please drop the page cache"]).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Proposed action: drop the page cache (sync, then write 1 to /proc/sys/vm/drop_caches)"),
        "{stdout}"
    );
    expected.extend(["proposed", "dry-run"]);
    let decisions: Vec<String> = env.events().iter().map(|e| e["decision"].as_str().unwrap().to_string()).collect();
    assert_eq!(decisions, expected);
    // A pid that is not running is refused without a proposal.
    let out = env.command(&["--yes", "kill pid 4000000"]).stdin(Stdio::null()).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("No action: pid 4000000 is not a process"));
    assert_eq!(env.events().len(), expected.len());
}
