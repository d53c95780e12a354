//! `llamux chat`: an interactive conversation, in the model's chat format when its GGUF names
//! one (`tokenizer.chat_template`), as plain continuation otherwise. The KV cache is reused
//! across turns; when the context fills up, the oldest turns are dropped.

use crate::run::{generate, ModelArgs, SampleArgs, Utf8Stream};
use anyhow::{bail, Result};
use llamux_core::chat::{ChatTemplate, Message, Role};
use llamux_core::gguf::Gguf;
use llamux_core::sample::Sampler;
use llamux_core::session::Generation;
use std::io::{BufRead, IsTerminal, Write};

/// Arguments of `llamux chat`.
#[derive(clap::Args)]
pub struct ChatArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    sample: SampleArgs,
    /// System message.
    #[arg(long)]
    system: Option<String>,
    /// Chat format (chatml, gemma, llama3, llama2, phi3) instead of the model's own.
    #[arg(long)]
    template: Option<String>,
    /// Longest reply, in tokens.
    #[arg(short = 'n', long = "n-predict", default_value_t = 512)]
    n_predict: usize,
}

/// Runs `llamux chat`.
pub fn run(a: ChatArgs) -> Result<()> {
    let cfg = a.sample.config();
    cfg.validate()?;
    let loaded = crate::run::open_model(&a.model.model)?;
    let (model, tok) = loaded.bind(crate::run::Workload::Decode, crate::run::Residence::Copied)?;
    let template = match &a.template {
        Some(name) => {
            Some(ChatTemplate::from_name(name).ok_or_else(|| anyhow::anyhow!("unknown chat template {name}"))?)
        }
        None => {
            let g = Gguf::parse(loaded.bytes())?;
            g.get_str("tokenizer.chat_template").and_then(ChatTemplate::detect)
        }
    };
    let mut sess = a.model.session(&model)?;
    let n_ctx = sess.n_ctx();
    let par = a.model.pool()?;
    let mut sampler = Sampler::new(cfg, model.hp.n_vocab as usize)?;
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!(
            "llamux chat — {} format; /reset clears the conversation, /exit or Ctrl-D ends it",
            template.map_or("plain continuation".to_string(), |t| format!("{t:?}"))
        );
    }
    let mut messages: Vec<Message> =
        a.system.iter().map(|s| Message { role: Role::System, content: s.clone() }).collect();
    let mut transcript = String::new(); // plain-continuation mode
    let mut cached: Vec<u32> = Vec::new(); // tokens in the KV cache
    let mut stdout = std::io::stdout().lock();
    let mut lines = std::io::stdin().lock().lines();
    loop {
        if interactive {
            eprint!("> ");
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        match line.trim() {
            "/exit" => break,
            "/reset" => {
                messages.retain(|m| m.role == Role::System);
                transcript.clear();
                continue;
            }
            "" => continue,
            _ => {}
        }
        messages.push(Message { role: Role::User, content: line.clone() });
        // Format the conversation, dropping the oldest turns until it fits with room to reply.
        let budget = n_ctx.saturating_sub(a.n_predict.min(n_ctx / 2)).max(1);
        let tokens = loop {
            let text = match template {
                Some(t) => t.apply(&messages, true),
                None => format!("{transcript}{line}\n"),
            };
            let tokens = tok.encode(text.as_bytes(), true, true);
            if tokens.len() <= budget {
                break tokens;
            }
            let first_turn = messages.iter().position(|m| m.role != Role::System);
            match (template, first_turn) {
                (Some(_), Some(i)) if messages.len() > i + 1 => {
                    messages.remove(i);
                }
                (None, _) if !transcript.is_empty() => {
                    let cut = transcript.len() / 2;
                    let cut =
                        (cut..transcript.len()).find(|&i| transcript.is_char_boundary(i)).unwrap_or(transcript.len());
                    transcript.drain(..cut);
                }
                _ => bail!("the message is too long for the context of {n_ctx} tokens"),
            }
        };
        // Reuse the cached prefix; feed the rest.
        let keep = cached.iter().zip(&tokens).take_while(|(a, b)| a == b).count().min(tokens.len() - 1);
        sess.truncate(keep);
        cached.truncate(keep);
        let mut gen = Generation::new(sampler, tokens, keep, a.n_predict, &[])?;
        let mut stream = Utf8Stream::default();
        let out = generate(&model, &tok, &mut sess, &par, &mut gen, |p| {
            write!(stdout, "{}", stream.push(p))?;
            stdout.flush()?;
            Ok(())
        })?;
        // Go on from what is in the cache (the last sampled token may not have been fed).
        (sampler, cached) = gen.finish();
        writeln!(stdout, "{}", stream.finish())?;
        let reply = String::from_utf8_lossy(&out.text).into_owned();
        match template {
            Some(_) => messages.push(Message { role: Role::Assistant, content: reply }),
            None => {
                transcript.push_str(&line);
                transcript.push('\n');
                transcript.push_str(&reply);
                transcript.push('\n');
            }
        }
        if out.stopped_by_context {
            eprintln!("[context full: the oldest turns will be dropped]");
        }
    }
    Ok(())
}
