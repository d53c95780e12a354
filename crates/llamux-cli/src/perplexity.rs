//! `llamux perplexity`: perplexity of a text file, computed as llama.cpp's `llama-perplexity`
//! does: the text is tokenized once (with BOS), cut into chunks of `-c` tokens whose first token
//! is replaced by BOS, and the second half of each chunk is scored.

use crate::run::ModelArgs;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// Arguments of `llamux perplexity`.
#[derive(clap::Args)]
pub struct PerplexityArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Text file.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Score at most this many chunks (default: all).
    #[arg(long = "chunks")]
    chunks: Option<usize>,
    /// Print `{"ppl": .., "chunks": ..}`.
    #[arg(long)]
    json: bool,
}

/// `-log p(target)` from logits, with the log-sum-exp in double precision.
fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let sum: f64 = logits.iter().map(|&v| f64::from(v - max).exp()).sum();
    let l = logits.get(target as usize).copied().unwrap_or(f32::NEG_INFINITY);
    -(f64::from(l - max) - sum.ln())
}

/// Runs `llamux perplexity`.
pub fn run(a: PerplexityArgs) -> Result<()> {
    let text = std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let loaded = crate::run::open_model(&a.model.model)?;
    let (model, tok) = loaded.bind(crate::run::Workload::Decode, crate::run::Residence::Copied)?;
    let n_ctx = a.model.ctx.unwrap_or(512);
    if !(16..=1 << 20).contains(&n_ctx) {
        bail!("-c must be between 16 and 1048576");
    }
    let tokens = tok.encode(&text, true, false);
    let available = tokens.len() / n_ctx;
    if available == 0 {
        bail!(
            "{} has {} tokens; at least {} are needed for one chunk of -c {n_ctx}",
            a.file.display(),
            tokens.len(),
            n_ctx
        );
    }
    let n_chunks = a.chunks.map_or(available, |c| c.min(available));
    let par = a.model.pool()?;
    let mut args = a.model.clone();
    args.ctx = Some(n_ctx);
    let mut sess = args.session(&model)?;
    let first = n_ctx / 2;
    let n_vocab = model.hp.n_vocab as usize;
    let mut logits = vec![0.0f32; sess.max_batch() * n_vocab];
    let (mut total_nll, mut count) = (0.0f64, 0usize);
    for c in 0..n_chunks {
        let mut chunk = tokens[c * n_ctx..(c + 1) * n_ctx].to_vec();
        if let (true, Some(bos)) = (tok.vocab.add_bos, tok.vocab.bos) {
            chunk[0] = bos;
        }
        sess.reset();
        // The first half only builds context: batches without logits. The second half's
        // logits score each next token.
        for batch in chunk[..first].chunks(sess.max_batch()) {
            model.feed_batch(&mut sess, batch, &par)?;
        }
        let mut j = first;
        for batch in chunk[first..n_ctx - 1].chunks(sess.max_batch()) {
            let out = &mut logits[..batch.len() * n_vocab];
            model.forward_batch_all(&mut sess, batch, &par, out)?;
            for row in out.chunks_exact(n_vocab) {
                total_nll += nll(row, chunk[j + 1]);
                count += 1;
                j += 1;
            }
        }
        if !a.json {
            eprintln!("[{}/{}] ppl so far {:.4}", c + 1, n_chunks, (total_nll / count as f64).exp());
        }
    }
    let ppl = (total_nll / count as f64).exp();
    if a.json {
        println!("{}", serde_json::json!({"ppl": ppl, "chunks": n_chunks, "n_ctx": n_ctx, "tokens_scored": count}));
    } else {
        println!("perplexity {ppl:.4} over {n_chunks} chunks of {n_ctx} tokens ({count} tokens scored)");
    }
    Ok(())
}
