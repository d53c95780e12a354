//! `llamux tokenize` and `llamux detokenize`.

use anyhow::{Context, Result};

/// Arguments of `llamux tokenize`.
#[derive(clap::Args)]
pub struct TokenizeArgs {
    /// Model file or known model name.
    #[arg(short = 'm', long = "model", default_value = crate::registry::DEFAULT_MODEL)]
    model: String,
    /// Text to tokenize.
    text: std::ffi::OsString,
    /// Do not add BOS/EOS.
    #[arg(long)]
    no_special: bool,
    /// Treat control-token text (`<start_of_turn>`) as plain text.
    #[arg(long)]
    no_parse_special: bool,
    /// Print one JSON object: `{"ids": [...], "pieces": [...]}`.
    #[arg(long)]
    json: bool,
}

/// Arguments of `llamux detokenize`.
#[derive(clap::Args)]
pub struct DetokenizeArgs {
    /// Model file or known model name.
    #[arg(short = 'm', long = "model", default_value = crate::registry::DEFAULT_MODEL)]
    model: String,
    /// Token ids.
    #[arg(required = true)]
    ids: Vec<u32>,
    /// Render control tokens (`<bos>`) as text.
    #[arg(long)]
    special: bool,
}

fn os_bytes(s: &std::ffi::OsStr) -> Vec<u8> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        s.as_bytes().to_vec()
    }
    #[cfg(not(unix))]
    s.to_string_lossy().into_owned().into_bytes()
}

/// Runs `llamux tokenize`.
pub fn tokenize(a: TokenizeArgs) -> Result<()> {
    let loaded = crate::run::open_model(&a.model)?;
    let tok = loaded.tokenizer()?;
    let ids = tok.encode(&os_bytes(&a.text), !a.no_special, !a.no_parse_special);
    let pieces: Vec<String> =
        ids.iter().map(|&id| String::from_utf8_lossy(&tok.piece(id, true)).into_owned()).collect();
    if a.json {
        println!("{}", serde_json::json!({"ids": ids, "pieces": pieces}));
    } else {
        for (id, p) in ids.iter().zip(&pieces) {
            println!("{id:>8} {p:?}");
        }
    }
    Ok(())
}

/// Runs `llamux detokenize`.
pub fn detokenize(a: DetokenizeArgs) -> Result<()> {
    let loaded = crate::run::open_model(&a.model)?;
    let tok = loaded.tokenizer()?;
    let n_vocab = tok.vocab.len();
    if let Some(bad) = a.ids.iter().find(|&&id| id as usize >= n_vocab) {
        return Err(anyhow::anyhow!("token id {bad} is outside the vocabulary of {n_vocab}")).context("detokenize");
    }
    let bytes = tok.decode(&a.ids, a.special);
    println!("{}", String::from_utf8_lossy(&bytes));
    Ok(())
}
