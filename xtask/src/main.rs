//! Project automation: `cargo xtask <task>`.
//!
//! * `test`      — everything CI checks: formatting, clippy, `cargo deny` (`deny`), the `no_std`
//!   build, the test suite (with the default model and llama.cpp's vocabularies fetched first),
//!   every fuzz target for 60 s (`fuzz`), the aarch64 unit tests under qemu-user
//!   (`test-aarch64`), and the kernel module's VM test (`vm`).
//! * `deny`      — `cargo deny check licenses bans sources` (see `deny.toml`; `gates.rs`).
//! * `fuzz [--seconds N] [TARGET..]` — every fuzz target in `fuzz/` (or those named) for N seconds
//!   (60 by default); prints executions, coverage and corpus size per target.
//! * `fixtures`  — regenerate the golden quantization fixtures from the PyPI `gguf` package.
//! * `oracle`    — install the pinned `llama-cpp-python` (llama.cpp built from source) into a cached venv.
//! * `llamacpp-check` — load `llamux synth` models with llama.cpp and evaluate a few tokens.
//! * `kquant-rmse` — compare our K-quant quantizers' RMSE with llama.cpp's `ggml_quantize_chunk`.
//! * `oracle-fixtures` — record llama.cpp's greedy tokens and logits for the oracle tests, its
//!   tokenization of its test strings with gemma3's and SmolLM2's vocabularies, and its chat formats.
//! * `oracle-check` — free-running check: llama.cpp's logits for llamux's own greedy output.
//! * `test-aarch64` — cross-build the core's unit tests for aarch64 (clippy included) and run them
//!   under qemu-user, so the NEON kernels are checked against their scalar twins on an x86 host.
//! * `bench-vs-llamacpp [--threads 1,2] [--reps 5] [--models a,b,..] [-p 512] [-n 128]` — build
//!   llama.cpp's `llama-bench` from the pinned `llama-cpp-python` sdist (cached), measure memory
//!   bandwidth, then run llama-bench and `llamux bench` alternately per model and thread count and
//!   print (and write to `target/bench/`) tokens/s, their ratio and the bandwidth roofline.
//! * `serve-bench [--clients 1,8] [--seconds 20] [--tokens 64] [--parallel 8]` — start `llamux serve`
//!   with SmolLM2 and measure the aggregate tokens/s of 1, 8, … concurrent greedy streaming clients
//!   (the `openai` Python client, `tools/serve_client.py`).
//! * `serve-soak [--clients 32] [--seconds 60] [--parallel 8] [--queue 32]` — many clients for a
//!   while (mixed requests, hang-ups, every greedy answer checked against its reference); fails on
//!   any error, mismatch or session left behind.
//! * `vm [--interactive]` — build llamux.ko, boot Debian's kernel in QEMU with it and run the
//!   in-kernel test (KVM when it works, TCG otherwise); `--interactive` gives a shell instead.
//! * `image [--model NAME|PATH] [--run | --test]` — build `target/llamux/llamux.iso`, a bootable
//!   Llamux (BIOS and UEFI) with the model in the kernel; `--run` boots it on this terminal,
//!   `--test` boots a test image three times and drives its console (see `image.rs`).

mod gates;
mod image;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const GGUF_PY: &str = "gguf==0.19.0";
const NUMPY: &str = "numpy>=1.26";
const LLAMA_CPP_PYTHON: &str = "llama-cpp-python==0.3.36";
/// The official OpenAI client, which the server tests drive `llamux serve` with.
const OPENAI_PY: &str = "openai==3.51.0";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("+ {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn python() -> String {
    std::env::var("LLAMUX_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn llamux_bin() -> PathBuf {
    root().join("target/release/llamux")
}

fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("LLAMUX_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(p).join("llamux");
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/llamux")
}

/// Output of `llamux pull NAME` (the path it prints).
fn pull(name: &str) -> Result<PathBuf> {
    let out = Command::new(llamux_bin()).args(["pull", name]).output().context("cannot run llamux pull")?;
    let err = String::from_utf8_lossy(&out.stderr);
    eprint!("{err}");
    if !out.status.success() {
        bail!("llamux pull {name} failed: {}", err.lines().last().unwrap_or_default().trim());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn rustup(args: &[&str]) -> Result<()> {
    run(Command::new("rustup").args(args))
}

/// A synthetic model the oracle fixtures were recorded on (seed 1, Q4_K_M), written into the
/// cache on first use.
fn synth(arch: &str, shape: &str) -> Result<PathBuf> {
    let dir = cache_dir().join("synth");
    std::fs::create_dir_all(&dir)?;
    let name = if arch == "llama" {
        format!("{shape}-q4_k_m-seed1.gguf")
    } else {
        format!("{arch}-{shape}-q4_k_m-seed1.gguf")
    };
    let path = dir.join(name);
    if !path.exists() {
        run(Command::new(llamux_bin())
            .args(["synth", "--arch", arch, "--shape", shape, "--ftype", "q4_k_m", "--seed", "1", "-o"])
            .arg(&path))?;
    }
    Ok(path)
}

fn tinyllama() -> Result<PathBuf> {
    synth("llama", "tinyllama")
}

const ORACLE_DIR: &str = "crates/llamux-core/tests/fixtures/oracle";

fn oracle_models() -> Result<Vec<(&'static str, PathBuf)>> {
    Ok(vec![
        ("gemma3-270m", pull("gemma3-270m")?),
        ("tinyllama-q4_k_m", tinyllama()?),
        ("qwen2-tiny-q4_k_m", synth("qwen2", "tiny")?),
        ("smollm2-135m-instruct", pull("smollm2-135m-instruct")?),
    ])
}

fn oracle_fixtures() -> Result<()> {
    let py = oracle()?;
    run(cargo().args(["build", "--release", "-p", "llamux-cli"]))?;
    for (name, model) in oracle_models()? {
        let out = root().join(ORACLE_DIR).join(format!("{name}.json"));
        run(Command::new(&py)
            .arg(root().join("tools/oracle.py"))
            .arg("record")
            .arg(&model)
            .arg(out)
            .args(["--name", name]))?;
    }
    // Tokenizer vectors for gemma3's and SmolLM2's vocabularies, and chat formats.
    let vocabs = pull("llama-vocabs")?;
    run(Command::new(&py)
        .arg(root().join("tools/tokenizer_vectors.py"))
        .arg(pull("gemma3-270m")?)
        .arg(&vocabs)
        .arg(root().join("crates/llamux-core/tests/fixtures/gemma3_tokenizer.json")))?;
    run(Command::new(&py)
        .arg(root().join("tools/tokenizer_vectors.py"))
        .arg(pull("smollm2-135m-instruct")?)
        .arg(&vocabs)
        .arg(root().join("crates/llamux-core/tests/fixtures/smollm2_tokenizer.json"))
        .arg("--extra"))?;
    run(Command::new(&py)
        .arg(root().join("tools/chat_templates.py"))
        .arg(root().join("crates/llamux-core/tests/fixtures/chat_templates.json")))?;
    Ok(())
}

/// Generates greedily with llamux for every fixture prompt, then has llama.cpp score each token.
fn oracle_check() -> Result<()> {
    let py = oracle()?;
    run(cargo().args(["build", "--release", "-p", "llamux-cli"]))?;
    for (name, model) in oracle_models()? {
        let fixture = root().join(ORACLE_DIR).join(format!("{name}.json"));
        let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&fixture)?)?;
        let mut lines = String::new();
        for case in fx["prompts"].as_array().context("fixture has no prompts")? {
            let prompt = case["prompt"].as_str().context("prompt")?;
            let out = Command::new(llamux_bin())
                .args(["run", "--json", "--temp", "0", "-n", "64", "-c", "512", "-m"])
                .arg(&model)
                .arg("-p")
                .arg(prompt)
                .output()?;
            if !out.status.success() {
                bail!("llamux run failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            let mut j: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            j["prompt"] = prompt.into();
            lines.push_str(&j.to_string());
            lines.push('\n');
        }
        let ours = std::env::temp_dir().join(format!("{name}.ours.jsonl"));
        std::fs::write(&ours, lines)?;
        eprintln!("== {name}");
        run(Command::new(&py).arg(root().join("tools/oracle.py")).arg("check").arg(&model).arg(&ours).arg(&fixture))?;
    }
    Ok(())
}

fn test() -> Result<()> {
    rustup(&["component", "add", "rustfmt", "clippy"])?;
    rustup(&["target", "add", "x86_64-unknown-none"])?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    // The kernel crate is outside the workspace (nightly, -Zbuild-std): clippy with the flags and
    // target kernel/build.sh builds it with (which also installs nightly's clippy and rustfmt),
    // then rustfmt.
    run(Command::new(root().join("kernel/build.sh")).arg("--clippy"))?;
    run(Command::new("cargo").current_dir(root()).args([
        "+nightly",
        "fmt",
        "--manifest-path",
        "kernel/rust/Cargo.toml",
        "--check",
    ]))?;
    gates::deny()?;
    // The core must build without std.
    run(cargo().args(["build", "-p", "llamux-core", "--target", "x86_64-unknown-none"]))?;
    run(cargo().args(["build", "--release", "-p", "llamux-cli"]))?;
    let gemma = pull("gemma3-270m")?;
    let smollm2 = pull("smollm2-135m-instruct")?;
    let vocabs = pull("llama-vocabs")?;
    let tinyllama = tinyllama()?;
    let qwen2 = synth("qwen2", "tiny")?;
    let openai = openai_py()?;
    run(cargo()
        .args(["test", "--workspace", "--release"])
        .env("LLAMUX_GEMMA", &gemma)
        .env("LLAMUX_SMOLLM2", &smollm2)
        .env("LLAMUX_VOCAB_DIR", &vocabs)
        .env("LLAMUX_TINYLLAMA", &tinyllama)
        .env("LLAMUX_QWEN2", &qwen2)
        .env("LLAMUX_BIN", llamux_bin())
        .env("LLAMUX_OPENAI_PY", &openai)
        .env("LLAMUX_REQUIRE_ASSETS", "1"))?;
    gates::fuzz(&["--seconds".to_string(), "60".to_string()], Some(&vocabs))?;
    // The NEON kernels, under qemu-user.
    test_aarch64()?;
    // The engine inside the kernel, booted in QEMU.
    vm(false)?;
    // The bootable image: three boots driven through the serial console.
    image::image(&["--test".to_string()])
}

/// Cross sysroot of Debian's `libc6-dev-arm64-cross` (qemu-user's `-L`).
const AARCH64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// The core's unit tests (every SIMD kernel against its scalar twin) built for aarch64 and run
/// under qemu-user, plus clippy for that target (the host build does not see the NEON code).
fn test_aarch64() -> Result<()> {
    const TARGET: &str = "aarch64-unknown-linux-gnu";
    let packages = "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static";
    need("aarch64-linux-gnu-gcc", packages)?;
    need("qemu-aarch64-static", packages)?;
    if !Path::new(AARCH64_SYSROOT).join("lib/ld-linux-aarch64.so.1").exists() {
        bail!("no aarch64 sysroot in {AARCH64_SYSROOT}: apt-get install {packages}");
    }
    rustup(&["target", "add", TARGET])?;
    let cross = |c: &mut Command| {
        c.env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc")
            .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER", format!("qemu-aarch64-static -L {AARCH64_SYSROOT}"));
    };
    let mut clippy = cargo();
    clippy.args(["clippy", "-p", "llamux-core", "--all-targets", "--target", TARGET, "--", "-D", "warnings"]);
    cross(&mut clippy);
    run(&mut clippy)?;
    let mut tests = cargo();
    tests.args(["test", "-p", "llamux-core", "--lib", "--target", TARGET]);
    cross(&mut tests);
    run(&mut tests)
}

/// A venv in the cache with the given packages installed.
fn venv(name: &str, packages: &[&str], env: &[(&str, &str)]) -> Result<PathBuf> {
    let dir = cache_dir().join(name);
    let py = dir.join("bin/python");
    if !py.exists() {
        run(Command::new(python()).args(["-m", "venv"]).arg(&dir))?;
    }
    let mut pip = Command::new(&py);
    pip.args(["-m", "pip", "install", "--disable-pip-version-check", "-q"]).args(packages);
    for (k, v) in env {
        pip.env(k, v);
    }
    run(&mut pip)?;
    Ok(py)
}

/// Python with the `openai` package, in a cached venv.
fn openai_py() -> Result<PathBuf> {
    venv("serve-venv", &[OPENAI_PY], &[])
}

/// A `llamux serve` on a free port of the loopback, stopped with SIGTERM when dropped.
struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    fn start(model: &Path, args: &[&str]) -> Result<Server> {
        use std::io::BufRead;
        let mut cmd = Command::new(llamux_bin());
        cmd.arg("serve").arg("-m").arg(model).args(["--host", "127.0.0.1", "--port", "0"]).args(args);
        eprintln!("+ {cmd:?}");
        let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().context("cannot start llamux serve")?;
        let mut lines = std::io::BufReader::new(child.stderr.take().context("no stderr")?).lines();
        let url = loop {
            let Some(line) = lines.next().transpose()? else {
                let _ = child.wait();
                bail!("llamux serve exited before listening");
            };
            eprintln!("{line}");
            if let Some(at) = line.find("http://") {
                break line[at..].split_whitespace().next().unwrap_or_default().to_string();
            }
        };
        // Keep reading, so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| eprintln!("{l}")));
        Ok(Server { child, url })
    }

    /// SIGTERM, then its exit status.
    fn stop(mut self) -> Result<std::process::ExitStatus> {
        run(Command::new("kill").args(["-TERM", &self.child.id().to_string()]))?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let _ = self.child.wait();
        }
    }
}

/// `--flag value` options of the serve tasks, with their defaults.
fn serve_opts(task: &str, args: &[String], opts: &mut [(&str, String)]) -> Result<()> {
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let names: Vec<_> = opts.iter().map(|(n, _)| *n).collect();
        let Some(slot) = opts.iter_mut().find(|(n, _)| *n == flag.as_str()) else {
            bail!("{task}: unknown option {flag} ({})", names.join(", "));
        };
        slot.1 = it.next().with_context(|| format!("{flag} needs a value"))?.clone();
    }
    Ok(())
}

/// Aggregate tokens/s of concurrent greedy streaming clients against `llamux serve`.
fn serve_bench(args: &[String]) -> Result<()> {
    let mut o = [
        ("--clients", "1,8".to_string()),
        ("--seconds", "20".to_string()),
        ("--tokens", "64".to_string()),
        ("--parallel", "8".to_string()),
    ];
    serve_opts("serve-bench", args, &mut o)?;
    let py = openai_py()?;
    run(cargo().args(["build", "--release", "-p", "llamux-cli"]))?;
    let model = pull("smollm2-135m-instruct")?;
    let server = Server::start(&model, &["--parallel", &o[3].1, "--queue", "64", "-c", "1024"])?;
    let out = output(
        Command::new(&py)
            .arg(root().join("tools/serve_client.py"))
            .args(["bench", &server.url, "--clients", &o[0].1, "--seconds", &o[1].1, "--tokens", &o[2].1])
            .env("NO_PROXY", "127.0.0.1"),
    )?;
    print!("{out}");
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("serve-bench.md"), &out)?;
    let status = server.stop()?;
    if !status.success() {
        bail!("llamux serve exited with {status} after SIGTERM");
    }
    Ok(())
}

/// Many clients against `llamux serve` for a while; fails on any error, wrong answer or leftover.
fn serve_soak(args: &[String]) -> Result<()> {
    let mut o = [
        ("--clients", "32".to_string()),
        ("--seconds", "60".to_string()),
        ("--parallel", "8".to_string()),
        ("--queue", "32".to_string()),
    ];
    serve_opts("serve-soak", args, &mut o)?;
    let py = openai_py()?;
    run(cargo().args(["build", "--release", "-p", "llamux-cli"]))?;
    let model = pull("smollm2-135m-instruct")?;
    let server = Server::start(&model, &["--parallel", &o[2].1, "--queue", &o[3].1, "-c", "1024"])?;
    run(Command::new(&py)
        .arg(root().join("tools/serve_client.py"))
        .args(["soak", &server.url, "--clients", &o[0].1, "--seconds", &o[1].1])
        .env("NO_PROXY", "127.0.0.1"))?;
    let status = server.stop()?;
    if !status.success() {
        bail!("llamux serve exited with {status} after SIGTERM");
    }
    Ok(())
}

fn fixtures() -> Result<()> {
    let py = venv("fixtures-venv", &[GGUF_PY, NUMPY], &[])?;
    let out = root().join("crates/llamux-core/tests/fixtures/quant_golden.gguf");
    run(Command::new(py).arg(root().join("tools/quant_fixtures.py")).arg(out))
}

/// llama.cpp through llama-cpp-python, built from source. On CPUs that list AMX a native build
/// dies with SIGILL inside VMs, so the build targets AVX2/FMA/F16C explicitly.
fn oracle() -> Result<PathBuf> {
    venv(
        "oracle",
        &[LLAMA_CPP_PYTHON, GGUF_PY, NUMPY],
        &[
            ("CMAKE_ARGS", "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"),
            ("CMAKE_BUILD_PARALLEL_LEVEL", "2"),
        ],
    )
}

fn llamacpp_check() -> Result<()> {
    let py = oracle()?;
    run(cargo().args(["build", "--release", "-p", "llamux-cli"]))?;
    run(Command::new(py).arg(root().join("tools/llamacpp_check.py")).arg(llamux_bin()))
}

fn kquant_rmse() -> Result<()> {
    let py = oracle()?;
    run(cargo().args(["build", "--release", "-p", "llamux-cli"]))?;
    let gemma = pull("gemma3-270m")?;
    run(Command::new(py).arg(root().join("tools/kquant_rmse.py")).arg(llamux_bin()).arg(gemma))
}

/// The newest kernel version with both an image and headers: `(vmlinuz, headers build dir)`.
fn kernel() -> Result<(PathBuf, PathBuf)> {
    let mut versions: Vec<String> = std::fs::read_dir("/lib/modules")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|v| {
            Path::new(&format!("/lib/modules/{v}/build")).exists() && Path::new(&format!("/boot/vmlinuz-{v}")).exists()
        })
        .collect();
    versions.sort_by_key(|v| {
        v.split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>()
    });
    let v = versions.pop().context("no kernel with headers: apt-get install linux-image-amd64 linux-headers-amd64")?;
    Ok((PathBuf::from(format!("/boot/vmlinuz-{v}")), PathBuf::from(format!("/lib/modules/{v}/build"))))
}

fn need(cmd: &str, package: &str) -> Result<()> {
    if Command::new("sh").args(["-c", &format!("command -v {cmd}")]).output()?.status.success() {
        Ok(())
    } else {
        bail!("{cmd} is missing: apt-get install {package}")
    }
}

/// Packs `dir` as a newc cpio archive.
fn cpio(dir: &Path, out: &Path) -> Result<()> {
    run(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find . | cpio -o -H newc --quiet > '{}'",
        dir.display(),
        out.display()
    )))
}

/// QEMU's accelerator and CPU: KVM with the host's CPU, or TCG emulating every feature it can.
fn qemu_accel(kvm: bool) -> &'static [&'static str] {
    if kvm {
        &["-enable-kvm", "-cpu", "host,-arch-capabilities"]
    } else {
        &["-accel", "tcg", "-cpu", "max"]
    }
}

/// The lowercase hex SHA-256 of a file (coreutils' `sha256sum`).
fn sha256_hex(path: &Path) -> Result<String> {
    let out = output(Command::new("sha256sum").arg(path))?;
    let hex = out.split_whitespace().next().unwrap_or_default();
    if hex.len() != 64 {
        bail!("sha256sum printed no digest for {}", path.display());
    }
    Ok(hex.to_string())
}

/// Builds llamux.ko against the kernel headers in `headers`; returns its path.
fn build_module(headers: &Path) -> Result<PathBuf> {
    run(Command::new(root().join("kernel/build.sh")).arg(headers))?;
    Ok(root().join("target/kernel/build/llamux.ko"))
}

/// Builds the debug llamux.ko whose `fault` parameter makes the engine panic (the same Rust
/// object as [`build_module`]'s); returns its path.
fn build_fault_module(headers: &Path) -> Result<PathBuf> {
    run(Command::new(root().join("kernel/build.sh")).arg(headers).arg("--fault-inject"))?;
    Ok(root().join("target/kernel/build-fault/llamux.ko"))
}

/// Builds `package`'s binaries statically (musl); returns the directory holding them.
fn build_static(package: &str) -> Result<PathBuf> {
    rustup(&["target", "add", "x86_64-unknown-linux-musl"])?;
    run(cargo().args(["build", "--release", "-p", package, "--target", "x86_64-unknown-linux-musl"]))?;
    Ok(root().join("target/x86_64-unknown-linux-musl/release"))
}

/// QEMU's arguments for booting `kernel` with `initrd` on a serial console.
fn qemu_args(kernel: &Path, initrd: &Path, kvm: bool, memory: &str) -> Vec<std::ffi::OsString> {
    let accel = qemu_accel(kvm);
    let mut a: Vec<std::ffi::OsString> =
        ["-m", memory, "-smp", "2", "-nographic", "-no-reboot"].iter().map(Into::into).collect();
    a.extend(["-kernel".into(), kernel.into(), "-initrd".into(), initrd.into()]);
    a.extend(["-append", "console=ttyS0 panic=-1 loglevel=4"].iter().map(Into::into));
    a.extend(accel.iter().map(Into::into));
    a
}

/// Runs QEMU on `initrd`; returns the console output. With `echo`, console lines from the test
/// (not the kernel's boot messages) are printed as they arrive.
fn qemu(kernel: &Path, initrd: &Path, kvm: bool, timeout_s: u64, memory: &str, echo: bool) -> Result<String> {
    use std::io::BufRead;
    let mut child = Command::new("timeout")
        .arg(timeout_s.to_string())
        .arg("qemu-system-x86_64")
        .args(qemu_args(kernel, initrd, kvm, memory))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut all = String::new();
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).split(b'\n') {
            let line = String::from_utf8_lossy(&line?).replace('\r', "");
            if echo && (!line.starts_with('[') || line.contains("llamux")) {
                println!("{line}");
            }
            all.push_str(&line);
            all.push('\n');
        }
    }
    child.wait()?;
    Ok(all)
}

/// Whether a KVM guest boots here (on some machines any KVM guest hangs at "Booting from ROM").
fn kvm_works(kernel: &Path, work: &Path) -> Result<bool> {
    if !Path::new("/dev/kvm").exists() {
        return Ok(false);
    }
    let dir = work.join("probe-root");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin"))?;
    std::fs::copy("/bin/busybox", dir.join("bin/busybox"))?;
    std::fs::write(
        dir.join("init"),
        "#!/bin/busybox sh\n/bin/busybox echo LLAMUX-KVM-PROBE-OK\n/bin/busybox poweroff -f\n",
    )?;
    run(Command::new("chmod").arg("+x").arg(dir.join("init")))?;
    let initrd = work.join("probe.cpio");
    cpio(&dir, &initrd)?;
    let out = qemu(kernel, &initrd, true, 40, "256M", false)?;
    Ok(out.contains("LLAMUX-KVM-PROBE-OK"))
}

fn vm(interactive: bool) -> Result<()> {
    for (cmd, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("cpio", "cpio"),
        ("busybox", "busybox-static"),
        ("cc", "gcc"),
        ("strip", "binutils"),
    ] {
        need(cmd, pkg)?;
    }
    let (kernel, headers) = kernel()?;
    let ko = build_module(&headers)?;
    let fault_ko = build_fault_module(&headers)?;
    let llamux_static = build_static("llamux-cli")?.join("llamux");
    run(cargo().args(["build", "--release", "-p", "llamux-cli"]))?;

    let work = root().join("target/vm");
    std::fs::create_dir_all(&work)?;
    let kvm = kvm_works(&kernel, &work)?;
    eprintln!("vm: {} ({})", kernel.display(), if kvm { "KVM" } else { "TCG: KVM unavailable or hanging" });
    // TCG runs this work ~350x slower than native: the tiny synthetic model there, gemma3-270m with KVM.
    let (model, name, n_tokens, stress_tokens, speed_tokens) = if kvm {
        (pull("gemma3-270m")?, "gemma3-270m", 32, 16, 128)
    } else {
        (synth("llama", "tiny")?, "synth-tiny-q4_k_m", 24, 4, 128)
    };

    let dir = work.join("root");
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["bin", "lib/firmware/llamux", "models", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox"))?;
    std::fs::copy(&llamux_static, dir.join("bin/llamux"))?;
    std::fs::copy(&ko, dir.join("llamux.ko"))?;
    std::fs::copy(&fault_ko, dir.join("llamux-fault.ko"))?;
    // The poll and stream checks of the prompt file, in C (busybox has no poll).
    run(Command::new("cc")
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(dir.join("bin/lxpoll"))
        .arg(root().join("kernel/vm/lxpoll.c")))?;
    // The release profile keeps debug information (for profiling): not in the initrd, which
    // TCG has to unpack at every boot.
    run(Command::new("strip").arg(dir.join("bin/llamux")).arg(dir.join("bin/lxpoll")))?;
    std::fs::copy(root().join("kernel/vm/init.sh"), dir.join("init"))?;
    std::fs::copy(root().join("kernel/vm/trust.sh"), dir.join("trust.sh"))?;
    let bytes = std::fs::read(&model)?;
    std::fs::write(dir.join("lib/firmware/llamux/model.gguf"), &bytes)?;
    std::fs::write(dir.join("models/truncated.gguf"), &bytes[..bytes.len() / 2])?;
    std::fs::write(dir.join("models/garbage.gguf"), b"GGUF\x03\x00\x00\x00 this is not a model".repeat(100))?;
    std::fs::write(dir.join("models/model.sha256"), sha256_hex(&model)?)?;
    std::fs::write(
        dir.join("test.env"),
        format!(
            "PROMPT='Once upon a time'\nN_TOKENS={n_tokens}\nN_CTX=256\nSTRESS_SECONDS=60\nSTRESS_TOKENS={stress_tokens}\nSPEED_TOKENS={speed_tokens}\nMODEL_NAME={name}\n"
        ),
    )?;
    if interactive {
        std::fs::write(dir.join("init"), "#!/bin/busybox sh\n/bin/busybox --install -s /bin\nmount -t proc proc /proc\nmount -t sysfs sys /sys\nmount -t devtmpfs dev /dev\ninsmod /llamux.ko\necho 'llamux.ko loaded. Try: echo \"Once upon a time\" > /proc/llamux/prompt; cat /proc/llamux/response'\nexec setsid cttyhack sh\n")?;
    }
    run(Command::new("chmod").arg("+x").arg(dir.join("init")))?;
    let initrd = work.join("initrd.cpio");
    cpio(&dir, &initrd)?;
    if interactive {
        return run(Command::new("sh")
            .arg("-c")
            .arg("exec \"$@\"")
            .arg("qemu")
            .args(qemu_args(&kernel, &initrd, kvm, "3G")));
    }
    let t0 = std::time::Instant::now();
    let out = qemu(&kernel, &initrd, kvm, if kvm { 900 } else { 2400 }, "3G", true)?;
    std::fs::write(work.join("console.log"), &out)?;
    eprintln!("vm: full console in {}", work.join("console.log").display());
    eprintln!("vm: {:.0} s", t0.elapsed().as_secs_f64());
    if out.contains("LLAMUX-VM-RESULT: PASS") {
        Ok(())
    } else {
        bail!("the in-kernel test did not pass")
    }
}

/// Options of `bench-vs-llamacpp`.
struct BenchOpts {
    threads: Vec<usize>,
    reps: usize,
    models: Vec<String>,
    n_prompt: usize,
    n_gen: usize,
}

/// The synthetic TinyLlama-shaped model's name in `--models`.
const TINYLLAMA: &str = "tinyllama";

fn parse_list(flag: &str, v: &str) -> Result<Vec<usize>> {
    let xs: Vec<usize> = v
        .split(',')
        .map(|x| x.trim().parse::<usize>().ok().filter(|&n| n > 0))
        .collect::<Option<_>>()
        .with_context(|| format!("{flag} takes positive integers separated by commas, not {v:?}"))?;
    if xs.is_empty() {
        bail!("{flag} is empty");
    }
    Ok(xs)
}

fn bench_opts(args: &[String]) -> Result<BenchOpts> {
    let mut o = BenchOpts {
        threads: vec![1, 2],
        reps: 5,
        models: ["gemma3-270m", "smollm2-135m-instruct", TINYLLAMA].map(String::from).to_vec(),
        n_prompt: 512,
        n_gen: 128,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--threads" | "-t" => o.threads = parse_list(flag, value()?)?,
            "--reps" | "-r" => {
                o.reps = value()?.parse().ok().filter(|&r| r > 0).context("--reps takes a positive count")?
            }
            "--models" => o.models = value()?.split(',').filter(|m| !m.is_empty()).map(String::from).collect(),
            "-p" => o.n_prompt = value()?.parse().context("-p takes a token count")?,
            "-n" => o.n_gen = value()?.parse().context("-n takes a token count")?,
            _ => bail!("bench-vs-llamacpp: unknown option {flag} (--threads, --reps, --models, -p, -n)"),
        }
    }
    if o.models.is_empty() {
        bail!("--models is empty");
    }
    if o.n_prompt == 0 && o.n_gen == 0 {
        bail!("-p and -n are both 0");
    }
    Ok(o)
}

/// The sdist of the pinned `llama-cpp-python`, whose `vendor/llama.cpp` is the llama.cpp the
/// oracle fixtures were recorded with.
const LLAMA_CPP_PYTHON_VERSION: &str = "0.3.36";

/// `llama-bench` built from the pinned llama.cpp (native, Release, static), cached.
fn llama_bench() -> Result<PathBuf> {
    let dir = cache_dir().join("llamacpp");
    let build = dir.join("build");
    let bin = build.join("bin/llama-bench");
    // Native, but without AMX: its instructions fault in VMs whose CPU lists them.
    let flags = "-march=native -mno-amx-tile -mno-amx-int8 -mno-amx-bf16";
    let cmake_args: Vec<String> = [
        "-DCMAKE_BUILD_TYPE=Release",
        "-DGGML_NATIVE=ON",
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_OPENSSL=OFF",
        "-DBUILD_SHARED_LIBS=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_SERVER=OFF",
        "-DLLAMA_BUILD_APP=OFF",
        "-DLLAMA_BUILD_UI=OFF",
        "-DLLAMA_USE_PREBUILT_UI=OFF",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("-DCMAKE_C_FLAGS={flags}"), format!("-DCMAKE_CXX_FLAGS={flags}")])
    .collect();
    let stamp = build.join("llamux-cmake-args.txt");
    // `-march=native` binds the build to this CPU: machines change between sessions (AVX2-only
    // and AVX-512), so the CPU's flags are part of the cache key.
    let cpu_flags = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("flags")).map(String::from))
        .unwrap_or_default();
    let want = format!("{}\n{cpu_flags}", cmake_args.join("\n"));
    if bin.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == want) {
        return Ok(bin);
    }
    need("cmake", "cmake")?;
    need("c++", "g++")?;
    std::fs::create_dir_all(&dir)?;
    let sdist = dir.join(format!("llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"));
    if !sdist.exists() {
        run(Command::new(python())
            .args(["-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--no-binary"])
            .args(["llama-cpp-python", &format!("llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"), "-d"])
            .arg(&dir))?;
    }
    let src = dir.join(format!("src/llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp"));
    if !src.join("CMakeLists.txt").exists() {
        std::fs::create_dir_all(dir.join("src"))?;
        run(Command::new("tar").arg("-xzf").arg(&sdist).arg("-C").arg(dir.join("src")))?;
    }
    run(Command::new("cmake").arg("-S").arg(&src).arg("-B").arg(&build).args(&cmake_args))?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get()).to_string();
    run(Command::new("cmake").arg("--build").arg(&build).args(["--target", "llama-bench", "-j", &jobs]))?;
    if !bin.exists() {
        bail!("the build did not produce {}", bin.display());
    }
    std::fs::write(&stamp, want)?;
    Ok(bin)
}

/// Runs `cmd`, returning its stdout (its stderr is shown only when it fails).
fn output(cmd: &mut Command) -> Result<String> {
    eprintln!("+ {cmd:?}");
    let out = cmd.output().with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        bail!("{cmd:?} failed with {}", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One JSON object per non-empty line.
fn json_lines(s: &str) -> Result<Vec<serde_json::Value>> {
    s.lines().filter(|l| !l.trim().is_empty()).map(|l| Ok(serde_json::from_str(l)?)).collect()
}

/// One line of the comparison.
struct BenchRow {
    model: String,
    threads: usize,
    test: String,
    llamacpp: Option<(f64, f64)>,
    llamux: (f64, f64),
    gb_per_s: f64,
    bytes_per_token: f64,
    roofline: Option<f64>,
}

fn bench_vs_llamacpp(args: &[String]) -> Result<()> {
    let o = bench_opts(args)?;
    let llama_bench = llama_bench()?;
    run(cargo().args(["build", "--release", "-p", "llamux-cli"]))?;
    let system: serde_json::Value =
        serde_json::from_str(&output(Command::new(llamux_bin()).args(["info", "--system", "--json"]))?)?;
    let threads = o.threads.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",");
    // `--mem-bw -t N` measures 1..=N threads, a list exactly those: either covers every count here.
    let bw = json_lines(&output(Command::new(llamux_bin()).args(["bench", "--mem-bw", "--json", "-t", &threads]))?)?;
    let bandwidth =
        |t: usize| bw.iter().find(|j| j["threads"].as_u64() == Some(t as u64)).and_then(|j| j["gb_per_s"].as_f64());
    let mut notes = Vec::new();
    let mut models = Vec::new();
    for name in &o.models {
        let path = if name == TINYLLAMA { tinyllama() } else { pull(name) };
        match path {
            Ok(p) => models.push((name.clone(), p)),
            Err(e) => notes.push(format!("{name}: skipped ({e:#})")),
        }
    }
    if models.is_empty() {
        bail!("no model to measure: {}", notes.join("; "));
    }
    let (p, n, r) = (o.n_prompt.to_string(), o.n_gen.to_string(), o.reps.to_string());
    let mut rows = Vec::new();
    for (name, path) in &models {
        for &t in &o.threads {
            let ts = t.to_string();
            let lc: serde_json::Value = serde_json::from_str(&output(
                Command::new(&llama_bench)
                    .arg("-m")
                    .arg(path)
                    .args(["-o", "json", "-p", &p, "-n", &n, "-t", &ts, "-r", &r]),
            )?)
            .context("llama-bench printed no JSON")?;
            let ours = json_lines(&output(
                Command::new(llamux_bin())
                    .args(["bench", "--json", "-m"])
                    .arg(path)
                    .args(["-p", &p, "-n", &n, "-t", &ts, "-r", &r]),
            )?)?;
            for j in &ours {
                let test = j["test"].as_str().unwrap_or_default().to_string();
                let (np, ng) = (j["n_prompt"].as_u64(), j["n_gen"].as_u64());
                let mean = j["pp_tokens_per_s"].as_f64().or(j["tg_tokens_per_s"].as_f64()).unwrap_or(0.0);
                let theirs = lc
                    .as_array()
                    .and_then(|a| a.iter().find(|x| x["n_prompt"].as_u64() == np && x["n_gen"].as_u64() == ng));
                let bpt = j["bytes_per_token"].as_f64().unwrap_or(0.0);
                rows.push(BenchRow {
                    model: name.clone(),
                    threads: t,
                    test,
                    llamacpp: theirs
                        .and_then(|x| Some((x["avg_ts"].as_f64()?, x["stddev_ts"].as_f64().unwrap_or(0.0)))),
                    llamux: (mean, j["stddev"].as_f64().unwrap_or(0.0)),
                    gb_per_s: j["gb_per_s"].as_f64().unwrap_or(0.0),
                    bytes_per_token: bpt,
                    roofline: bandwidth(t).filter(|_| bpt > 0.0).map(|b| b * 1e9 / bpt),
                });
            }
        }
    }
    let md = bench_markdown(&rows, &o, &system, &bw, &notes);
    print!("{md}");
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("bench-vs-llamacpp.md"), &md)?;
    let json_rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "model": r.model, "threads": r.threads, "test": r.test,
                "llamacpp_tokens_per_s": r.llamacpp.map(|x| x.0), "llamacpp_stddev": r.llamacpp.map(|x| x.1),
                "llamux_tokens_per_s": r.llamux.0, "llamux_stddev": r.llamux.1,
                "ratio": r.llamacpp.filter(|x| x.0 > 0.0).map(|x| r.llamux.0 / x.0),
                "llamux_gb_per_s": r.gb_per_s, "bytes_per_token": r.bytes_per_token,
                "roofline_tokens_per_s": r.roofline,
                "roofline_fraction": r.roofline.filter(|&x| x > 0.0).map(|x| r.llamux.0 / x),
            })
        })
        .collect();
    let j = serde_json::json!({
        "llama_cpp": format!("llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} (vendored llama.cpp), llama-bench"),
        "n_prompt": o.n_prompt, "n_gen": o.n_gen, "repetitions": o.reps,
        "system": system, "bandwidth": bw, "rows": json_rows, "notes": notes,
    });
    std::fs::write(dir.join("bench-vs-llamacpp.json"), format!("{j:#}\n"))?;
    eprintln!("wrote {} and bench-vs-llamacpp.json", dir.join("bench-vs-llamacpp.md").display());
    Ok(())
}

fn bench_markdown(
    rows: &[BenchRow],
    o: &BenchOpts,
    system: &serde_json::Value,
    bw: &[serde_json::Value],
    notes: &[String],
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "llama-bench (llama-cpp-python {LLAMA_CPP_PYTHON_VERSION}) vs llamux bench: -p {} -n {} -r {}; llamux isa {}, cpu {}",
        o.n_prompt,
        o.n_gen,
        o.reps,
        system["isa"].as_str().unwrap_or("?"),
        system["cpu"].as_str().unwrap_or("?"),
    );
    let bws: Vec<String> = bw
        .iter()
        .filter_map(|j| Some(format!("{} thread(s) {:.1} GB/s", j["threads"].as_u64()?, j["gb_per_s"].as_f64()?)))
        .collect();
    let _ = writeln!(s, "memory read bandwidth (best pass): {}", bws.join(", "));
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "| model | threads | test | llama.cpp t/s | llamux t/s | llamux/llama.cpp | llamux GB/s | roofline t/s | % of roofline |"
    );
    let _ = writeln!(s, "| :-- | --: | --: | --: | --: | --: | --: | --: | --: |");
    for r in rows {
        let lc = r.llamacpp.map_or("-".to_string(), |(m, sd)| format!("{m:.2} ± {sd:.2}"));
        let ratio = r.llamacpp.filter(|x| x.0 > 0.0).map_or("-".to_string(), |x| format!("{:.2}", r.llamux.0 / x.0));
        // Prompts run in batches (each weight read once per batch): no weight-bandwidth roofline.
        let roofline = r.roofline.filter(|_| r.test.starts_with("tg"));
        let roof = roofline.map_or("-".to_string(), |x| format!("{x:.1}"));
        let pct = roofline.filter(|&x| x > 0.0).map_or("-".to_string(), |x| format!("{:.1}%", 100.0 * r.llamux.0 / x));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {lc} | {:.2} ± {:.2} | {ratio} | {:.2} | {roof} | {pct} |",
            r.model, r.threads, r.test, r.llamux.0, r.llamux.1, r.gb_per_s
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "roofline (tg) = bandwidth at that thread count / weight bytes per token. Prompts (pp) are batched in \
         both engines, reading each weight once per batch, so they have no such bound."
    );
    for n in notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let rest: Vec<String> = std::env::args().skip(2).collect();
    match task.as_str() {
        "test" => test(),
        "fixtures" => fixtures(),
        "oracle" => oracle().map(|py| println!("{}", py.display())),
        "llamacpp-check" => llamacpp_check(),
        "kquant-rmse" => kquant_rmse(),
        "oracle-fixtures" => oracle_fixtures(),
        "oracle-check" => oracle_check(),
        "test-aarch64" => test_aarch64(),
        "deny" => gates::deny(),
        "fuzz" => gates::fuzz(&rest, None),
        "bench-vs-llamacpp" => bench_vs_llamacpp(&rest),
        "serve-bench" => serve_bench(&rest),
        "serve-soak" => serve_soak(&rest),
        "vm" => vm(std::env::args().any(|a| a == "--interactive")),
        "image" => image::image(&rest),
        _ => bail!(
            "usage: cargo xtask <test|deny|fuzz|test-aarch64|fixtures|oracle|llamacpp-check|kquant-rmse|oracle-fixtures|oracle-check|bench-vs-llamacpp|serve-bench|serve-soak|vm|image>"
        ),
    }
}
