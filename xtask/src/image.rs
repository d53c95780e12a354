//! `cargo xtask image [--model NAME|PATH] [--key KEY] [--run | --test]`: a bootable Llamux ISO
//! (BIOS and UEFI, GRUB from `grub-mkrescue`) with Debian's kernel and an initramfs holding
//! busybox, the static tools, `llamux.ko` and the model, signed: the image trusts one Ed25519
//! key (`--key`, a `llamux keygen` secret key with its `KEY.pub`; by default a build key made
//! once in `target/llamux/`) and its module refuses a model that key did not sign. `--run` boots
//! it in QEMU on this terminal, `--test` boots it three times under QEMU (SeaBIOS, OVMF, and a
//! panic) and drives its serial console.

use super::{cpio, kernel, kvm_works, need, pull, qemu_accel, root, run, sha256_hex, synth, venv};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The model an image carries unless `--model` names another.
const DEFAULT_MODEL: &str = "smollm2-135m-instruct";
/// The console driver of `--test` (from PyPI, in a cached venv).
const PEXPECT_PY: &str = "pexpect==4.9.0";
/// UEFI firmware for QEMU (Debian's `ovmf`).
const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
/// Where the ISO's files come from in the source tree.
const IMAGE_SRC: &str = "kernel/image";
/// The key that signs an image's model unless `--key` names one (made on first use).
const BUILD_KEY: &str = "target/llamux/image.key";
/// Where the image keeps the trusted public key (rcS gives it to the module as `pubkey=`).
const IMAGE_PUBKEY: &str = "etc/llamux/models.pub";

struct Opts {
    model: Option<String>,
    key: Option<PathBuf>,
    run: bool,
    test: bool,
}

fn opts(args: &[String]) -> Result<Opts> {
    let mut o = Opts { model: None, key: None, run: false, test: false };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--model" | "-m" => o.model = Some(it.next().context("--model needs a name or a path")?.clone()),
            "--key" => o.key = Some(PathBuf::from(it.next().context("--key needs a secret key file")?)),
            "--run" => o.run = true,
            "--test" => o.test = true,
            _ => bail!("image: unknown option {a} (--model NAME|PATH, --key KEY, --run, --test)"),
        }
    }
    if o.run && o.test {
        bail!("image: --run and --test exclude each other");
    }
    Ok(o)
}

pub fn image(args: &[String]) -> Result<()> {
    let o = opts(args)?;
    let key = signing_key(o.key.as_deref())?;
    if o.test {
        return test(o.model.as_deref(), &key);
    }
    let model = model_path(o.model.as_deref().unwrap_or(DEFAULT_MODEL))?;
    let out = root().join("target/llamux");
    let iso = build(&model, &key, &out)?;
    if o.run {
        boot(&iso, &out, &model)?;
    }
    Ok(())
}

/// A path as it is, else a known name (pulled into the cache).
fn model_path(name: &str) -> Result<PathBuf> {
    let p = Path::new(name);
    if p.is_file() {
        return Ok(p.to_path_buf());
    }
    // `llamux pull` needs the host's CLI.
    run(super::cargo().args(["build", "--release", "-p", "llamux-cli"]))?;
    pull(name)
}

/// The key an image's model is signed with: its secret key file and its public key (hex).
struct SigningKey {
    secret: PathBuf,
    public: String,
}

/// `key` (a `llamux keygen` secret key, its public key in `KEY.pub` beside it), else the build
/// key, made by `llamux keygen` the first time.
fn signing_key(key: Option<&Path>) -> Result<SigningKey> {
    // `llamux keygen` and `llamux sign` are the host's CLI.
    run(super::cargo().args(["build", "--release", "-p", "llamux-cli"]))?;
    let secret = match key {
        Some(k) => {
            if !k.is_file() {
                bail!("--key {}: no such file (a secret key from `llamux keygen -o KEY`)", k.display());
            }
            k.to_path_buf()
        }
        None => {
            let k = root().join(BUILD_KEY);
            if !k.exists() {
                std::fs::create_dir_all(k.parent().context("the build key has no directory")?)?;
                run(Command::new(super::llamux_bin()).arg("keygen").arg("-o").arg(&k))?;
            }
            k
        }
    };
    let mut pub_path = secret.clone().into_os_string();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    let text = std::fs::read_to_string(&pub_path).with_context(|| {
        format!(
            "cannot read {} (the public key `llamux keygen` writes beside {})",
            pub_path.display(),
            secret.display()
        )
    })?;
    let public = text.trim().to_ascii_lowercase();
    if public.len() != 64 || !public.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{}: not a public key (64 hex digits)", pub_path.display());
    }
    Ok(SigningKey { secret, public })
}

/// The binaries of `crates/llamux-tools` (its `[[bin]]` names).
fn tool_names() -> Result<Vec<String>> {
    let manifest = std::fs::read_to_string(root().join("crates/llamux-tools/Cargo.toml"))?;
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(v) = line.strip_prefix("name").map(str::trim).and_then(|v| v.strip_prefix('=')) {
            if in_bin {
                names.push(v.trim().trim_matches('"').to_string());
            }
        }
    }
    if names.is_empty() {
        bail!("crates/llamux-tools/Cargo.toml lists no [[bin]]");
    }
    Ok(names)
}

/// What `grub-mkrescue` needs for both firmwares: `(command or directory, Debian package)`.
fn check_packages() -> Result<()> {
    for (cmd, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("cpio", "cpio"),
        ("busybox", "busybox-static"),
        ("grub-mkrescue", "grub-common"),
        ("xorriso", "xorriso"),
        ("mformat", "mtools"),
        ("strip", "binutils"),
    ] {
        need(cmd, pkg)?;
    }
    for (dir, pkg) in [("/usr/lib/grub/i386-pc", "grub-pc-bin"), ("/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin")] {
        if !Path::new(dir).is_dir() {
            bail!("{dir} is missing: apt-get install {pkg}");
        }
    }
    Ok(())
}

/// Builds `out/llamux.iso` carrying `model` signed with `key`; returns its path.
fn build(model: &Path, key: &SigningKey, out: &Path) -> Result<PathBuf> {
    check_packages()?;
    let (vmlinuz, headers) = kernel()?;
    let version = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .context("kernel image name is not vmlinuz-VERSION")?
        .to_string();
    let ko = super::build_module(&headers)?;
    let names = tool_names()?;
    let bins = super::build_static("llamux-tools")?;

    let dir = out.join("root");
    let _ = std::fs::remove_dir_all(&dir);
    let modules = format!("lib/modules/{version}");
    for d in ["bin", "etc/init.d", "etc/llamux", "lib/firmware/llamux", &format!("{modules}/extra"), "proc", "sys"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    for d in ["dev", "tmp", "root", "run"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh"))?;
    // busybox's init applet is PID 1 (the kernel runs /init): it runs rcS, then the inittab's shells.
    std::os::unix::fs::symlink("bin/busybox", dir.join("init"))?;
    for name in &names {
        let bin = bins.join(name);
        let to = dir.join("bin").join(name);
        std::fs::copy(&bin, &to).with_context(|| format!("{} was not built", bin.display()))?;
        // The release profile keeps debug information (for profiling): not in the image.
        run(Command::new("strip").arg(&to))?;
    }
    std::fs::copy(&ko, dir.join(&modules).join("extra/llamux.ko"))?;
    // For busybox modprobe (`llmctl load`).
    std::fs::write(dir.join(&modules).join("modules.dep"), "extra/llamux.ko:\n")?;
    let src = root().join(IMAGE_SRC);
    std::fs::copy(src.join("rcS"), dir.join("etc/init.d/rcS"))?;
    std::fs::copy(src.join("inittab"), dir.join("etc/inittab"))?;
    std::fs::copy(src.join("llamux-shell"), dir.join("bin/llamux-shell"))?;
    let firmware = dir.join("lib/firmware/llamux/model.gguf");
    std::fs::copy(model, &firmware).with_context(|| format!("cannot copy {}", model.display()))?;
    std::fs::write(dir.join("lib/firmware/llamux/model.gguf.sha256"), sha256_hex(model)?)?;
    // The signature beside the model (`MODEL.sig`, where the module and the tools look).
    run(Command::new(super::llamux_bin())
        .arg("sign")
        .arg("-m")
        .arg(&firmware)
        .arg("--key")
        .arg(&key.secret)
        .arg("-o")
        .arg(dir.join("lib/firmware/llamux/model.gguf.sig")))?;
    std::fs::write(dir.join(IMAGE_PUBKEY), format!("{}\n", key.public))?;
    // Without the module the tools would run the engine in-process: on the same file, checked
    // against the same key.
    std::fs::write(
        dir.join("etc/llamux/config.toml"),
        format!(
            "# The Llamux image: the kernel module's model, for every backend, signed by the image's key.\n\
             model = \"/lib/firmware/llamux/model.gguf\"\ntrusted_key = \"/{IMAGE_PUBKEY}\"\n"
        ),
    )?;
    run(Command::new("chmod").arg("+x").arg(dir.join("etc/init.d/rcS")).arg(dir.join("bin/llamux-shell")))?;

    let iso_dir = out.join("iso");
    let _ = std::fs::remove_dir_all(&iso_dir);
    std::fs::create_dir_all(iso_dir.join("boot/grub"))?;
    // Uncompressed: the model does not compress, and unpacking costs boot time under TCG.
    cpio(&dir, &iso_dir.join("boot/initrd.img"))?;
    std::fs::copy(&vmlinuz, iso_dir.join("boot/vmlinuz"))?;
    std::fs::copy(src.join("grub.cfg"), iso_dir.join("boot/grub/grub.cfg"))?;
    let iso = out.join("llamux.iso");
    run(Command::new("grub-mkrescue").arg("-o").arg(&iso).arg(&iso_dir).args(["--", "-volid", "LLAMUX"]))?;
    let size = std::fs::metadata(&iso)?.len();
    eprintln!(
        "image: {} ({} MiB; kernel {version}, model {} signed by {} ({}), tools {})",
        iso.display(),
        size >> 20,
        model.display(),
        key.public,
        key.secret.display(),
        names.join(" ")
    );
    Ok(iso)
}

/// QEMU memory for an image with `model`: its copies (initramfs, the module's) and room to run.
fn memory_mib(model: &Path) -> Result<u64> {
    let mib = std::fs::metadata(model)?.len() >> 20;
    Ok((3 * mib + 768).next_multiple_of(256))
}

/// Boots `iso` in QEMU on this terminal (serial console; Ctrl-A X quits).
fn boot(iso: &Path, work: &Path, model: &Path) -> Result<()> {
    let (vmlinuz, _) = kernel()?;
    let kvm = kvm_works(&vmlinuz, work)?;
    eprintln!(
        "image: booting {} ({}); Ctrl-A X quits QEMU",
        iso.display(),
        if kvm { "KVM" } else { "TCG: KVM unavailable or hanging" }
    );
    run(Command::new("qemu-system-x86_64")
        .args(["-m", &memory_mib(model)?.to_string(), "-smp", "2", "-nographic", "-no-reboot"])
        .arg("-cdrom")
        .arg(iso)
        .args(["-boot", "d"])
        .args(qemu_accel(kvm)))
}

/// Builds a test image (the tiny synthetic model under TCG, `model` or the default under KVM)
/// and runs `tools/image_test.py` on it.
fn test(model: Option<&str>, key: &SigningKey) -> Result<()> {
    if !Path::new(OVMF).exists() {
        bail!("{OVMF} is missing: apt-get install ovmf");
    }
    let out = root().join("target/llamux/test");
    std::fs::create_dir_all(&out)?;
    let (vmlinuz, _) = kernel()?;
    let kvm = kvm_works(&vmlinuz, &out)?;
    // TCG runs the engine ~350x slower than native: the tiny synthetic model keeps three boots
    // within a few minutes; it has no chat format, so the test asks for plain continuations.
    let (path, chat) = if kvm {
        (model_path(model.unwrap_or(DEFAULT_MODEL))?, true)
    } else {
        if let Some(m) = model {
            eprintln!("image --test: under TCG the tiny synthetic model is used, not {m} (--model counts under KVM)");
        }
        run(super::cargo().args(["build", "--release", "-p", "llamux-cli"]))?;
        (synth("llama", "tiny")?, false)
    };
    eprintln!("image --test: {} with {}", if kvm { "KVM" } else { "TCG" }, path.display());
    let iso = build(&path, key, &out)?;
    let py = venv("image-venv", &[PEXPECT_PY], &[])?;
    let accel = qemu_accel(kvm).iter().map(|s| s.to_string()).collect::<Vec<_>>().join(" ");
    let mut cmd = Command::new(py);
    cmd.arg(root().join("tools/image_test.py"))
        .arg(&iso)
        .args(["--ovmf", OVMF, "--memory", &memory_mib(&path)?.to_string(), "--accel", &accel])
        .arg("--logs")
        .arg(&out)
        .args(["--prompt-deadline", if kvm { "30" } else { "90" }])
        .args(["--pubkey", &key.public]);
    if !chat {
        cmd.arg("--raw");
    }
    let t0 = std::time::Instant::now();
    let r = run(&mut cmd);
    eprintln!("image --test: {:.0} s", t0.elapsed().as_secs_f64());
    r
}
