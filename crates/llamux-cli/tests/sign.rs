//! Signed models end to end: `llamux keygen`, `sign`, `verify`, and a trusted key making the
//! commands that run a model refuse unsigned, tampered and foreign-signed files in one line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

#[path = "../../llamux-core/tests/common/hostile.rs"]
mod hostile;

fn llamux() -> Command {
    let mut c = Command::cargo_bin("llamux").unwrap();
    // Nothing from the machine's configuration.
    c.env_remove("LLAMUX_TRUSTED_KEY").env("LLAMUX_CONFIG", "");
    c
}

/// Exit status 1 and one line on stderr containing `want`.
fn refused(out: &std::process::Output, want: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("llamux: error:") && stderr.contains(want), "want {want:?}: {stderr}");
}

fn run_with_key(model: &Path, key: &Path) -> std::process::Output {
    llamux()
        .env("LLAMUX_TRUSTED_KEY", key)
        .args(["run", "-t", "1", "-c", "64", "-n", "3", "--temp", "0", "-p", "Once upon a time", "-m"])
        .arg(model)
        .output()
        .unwrap()
}

#[test]
fn keygen_sign_verify_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("m.gguf");
    let bytes = hostile::variant(hostile::Arch::Llama, hostile::TINY, |_| {}).bytes().unwrap();
    std::fs::write(&model, &bytes).unwrap();

    // Keys: the secret one private, the public one beside it; never replaced.
    llamux().args(["keygen", "-o"]).arg(d.join("k")).assert().success();
    assert_eq!(std::fs::metadata(d.join("k")).unwrap().permissions().mode() & 0o777, 0o600);
    let public = std::fs::read_to_string(d.join("k.pub")).unwrap();
    assert_eq!(public.trim().len(), 64);
    refused(&llamux().args(["keygen", "-o"]).arg(d.join("k")).output().unwrap(), "exists already");
    llamux().args(["keygen", "-o"]).arg(d.join("other")).assert().success();

    // Unsigned: verify and run refuse it once a key is trusted; without one it runs.
    refused(
        &llamux().args(["verify", "--pubkey"]).arg(d.join("k.pub")).arg("-m").arg(&model).output().unwrap(),
        "is not signed",
    );
    refused(&run_with_key(&model, &d.join("k.pub")), "is not signed");
    llamux()
        .args(["run", "-t", "1", "-c", "64", "-n", "3", "--temp", "0", "-p", "Hi", "-m"])
        .arg(&model)
        .assert()
        .success();

    // Signed: verified (key as a file or as hex) and run.
    llamux().args(["sign", "--key"]).arg(d.join("k")).arg("-m").arg(&model).assert().success();
    let sig = std::fs::read_to_string(d.join("m.gguf.sig")).unwrap();
    assert!(sig.starts_with("llamux-signature-v1\nsha256 "), "{sig}");
    let out = llamux().args(["verify", "--pubkey", public.trim(), "-m"]).arg(&model).output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("good signature"));
    let out = run_with_key(&model, &d.join("k.pub"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // One byte changed: refused by verify and by run.
    let mut tampered = bytes.clone();
    let at = tampered.len() - 100;
    tampered[at] ^= 0x20;
    let bad = d.join("t.gguf");
    std::fs::write(&bad, &tampered).unwrap();
    std::fs::copy(d.join("m.gguf.sig"), d.join("t.gguf.sig")).unwrap();
    refused(
        &llamux().args(["verify", "--pubkey"]).arg(d.join("k.pub")).arg("-m").arg(&bad).output().unwrap(),
        "changed after signing",
    );
    refused(&run_with_key(&bad, &d.join("k.pub")), "changed after signing");

    // Another trusted key: refused.
    refused(
        &llamux().args(["verify", "--pubkey"]).arg(d.join("other.pub")).arg("-m").arg(&model).output().unwrap(),
        "not by the trusted key",
    );
    refused(&run_with_key(&model, &d.join("other.pub")), "not by the trusted key");

    // The digest line forged to the tampered file's: the signature does not verify.
    let forged = sig.replace(sig.lines().nth(1).unwrap(), &format!("sha256 {}", sha256_hex(&tampered)));
    std::fs::write(d.join("t.gguf.sig"), forged).unwrap();
    refused(&run_with_key(&bad, &d.join("k.pub")), "does not verify");

    // The trusted key from the configuration file.
    let cfg = d.join("config.toml");
    std::fs::write(&cfg, format!("trusted_key = {:?}\n", d.join("other.pub"))).unwrap();
    let out = llamux().env("LLAMUX_CONFIG", &cfg).args(["verify", "-m"]).arg(&model).output().unwrap();
    refused(&out, "not by the trusted key");
    std::fs::write(&cfg, format!("trusted_key = {:?}\n", public.trim())).unwrap();
    llamux().env("LLAMUX_CONFIG", &cfg).args(["verify", "-m"]).arg(&model).assert().success();
    // Bad keys and key files are refused in one line.
    refused(
        &llamux().args(["verify", "--pubkey", "1234", "-m"]).arg(&model).output().unwrap(),
        "cannot read the public key",
    );
    refused(
        &llamux().args(["sign", "--key"]).arg(d.join("k.pub")).arg("-m").arg(&model).output().unwrap(),
        "not a llamux secret key file",
    );
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}
