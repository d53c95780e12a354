//! The forward pass, top to bottom, for a batch of tokens at consecutive positions of one session
//! (a prompt chunk), or one token (decoding: a batch of one). Every weight matrix is read once
//! per batch; each token's activations are quantized on their own and meet the same kernels as
//! in a batch of one, so a batch's results equal those of feeding its tokens one at a time.

use super::{Activation, Model};
use crate::isa;
use crate::ops::{attend_head, project, rms_norm, rms_norm_in_place, silu_mul, AttnScratch, Rope, Window};
use crate::platform::{Parallel, SharedMut};
use crate::session::{Activations, BatchScratch, KvCache, Session, SessionError};

impl Model<'_> {
    /// Runs token `token` at the session's next position; returns the logits.
    pub fn forward<'s>(
        &self,
        sess: &'s mut Session,
        token: u32,
        par: &dyn Parallel,
    ) -> Result<&'s [f32], SessionError> {
        self.forward_batch(sess, &[token], par)
    }

    /// Runs `tokens` at the session's next positions, as one batch of at most
    /// [`Session::max_batch`] tokens; returns the logits after the last.
    pub fn forward_batch<'s>(
        &self,
        sess: &'s mut Session,
        tokens: &[u32],
        par: &dyn Parallel,
    ) -> Result<&'s [f32], SessionError> {
        self.run_batch(sess, tokens, par, Want::Last)?;
        Ok(&sess.s.logits)
    }

    /// As [`forward_batch`](Self::forward_batch) without the logits (a prompt chunk that is
    /// not the last: nothing reads them); the session's logits are left as they were.
    pub fn feed_batch(&self, sess: &mut Session, tokens: &[u32], par: &dyn Parallel) -> Result<(), SessionError> {
        self.run_batch(sess, tokens, par, Want::None)
    }

    /// One decoding step for several sessions together: `tokens[i]` at `sessions[i]`'s next
    /// position, every weight read once for all of them (continuous batching); each session's
    /// logits land in its own buffer ([`Session::logits_mut`]). The same results, bit for bit,
    /// as [`forward`](Self::forward) on each session alone.
    pub fn forward_multi(
        &self,
        sessions: &mut [&mut Session],
        tokens: &[u32],
        scratch: &mut BatchScratch,
        par: &dyn Parallel,
    ) -> Result<(), SessionError> {
        let nb = tokens.len();
        if nb == 0 || nb != sessions.len() || nb > scratch.max_batch {
            return Err(SessionError::BatchSize { got: nb.max(sessions.len()), max: scratch.max_batch });
        }
        for sess in sessions.iter() {
            if sess.pos >= sess.n_ctx() {
                return Err(SessionError::ContextFull { n_ctx: sess.n_ctx() });
            }
            if sess.n_ctx() > scratch.n_ctx || sess.s.logits.len() != self.hp.n_vocab as usize {
                return Err(SessionError::BatchSize { got: sess.n_ctx(), max: scratch.n_ctx });
            }
        }
        let n_vocab = self.hp.n_vocab as usize;
        let BatchScratch { s, logits, .. } = scratch;
        let Some(logits) = logits.get_mut(..nb * n_vocab) else {
            return Err(SessionError::BatchSize { got: nb, max: logits.len() / n_vocab.max(1) });
        };
        self.pass(s, &mut EachSession { sessions: &mut *sessions }, tokens, par, Logits::All(&mut *logits))?;
        for (sess, row) in sessions.iter_mut().zip(logits.chunks_exact(n_vocab)) {
            sess.s.logits.copy_from_slice(row);
            sess.pos += 1;
        }
        Ok(())
    }

    /// As [`forward_batch`](Self::forward_batch), writing the logits after every token of the
    /// batch into `logits` (`n_vocab` per token, token after token), as perplexity needs.
    pub fn forward_batch_all(
        &self,
        sess: &mut Session,
        tokens: &[u32],
        par: &dyn Parallel,
        logits: &mut [f32],
    ) -> Result<(), SessionError> {
        let want = tokens.len().saturating_mul(self.hp.n_vocab as usize);
        if logits.len() != want {
            return Err(SessionError::Quant(crate::quant::QuantError::LengthMismatch {
                expected: want,
                got: logits.len(),
            }));
        }
        self.run_batch(sess, tokens, par, Want::All(logits))
    }

    /// A batch of one session, with the logits `want` asks for.
    fn run_batch(
        &self,
        sess: &mut Session,
        tokens: &[u32],
        par: &dyn Parallel,
        want: Want<'_>,
    ) -> Result<(), SessionError> {
        let nb = tokens.len();
        if nb == 0 || nb > sess.max_batch() {
            return Err(SessionError::BatchSize { got: nb, max: sess.max_batch() });
        }
        if sess.pos + nb > sess.n_ctx() {
            return Err(SessionError::ContextFull { n_ctx: sess.n_ctx() });
        }
        let Session { kv, s, pos, .. } = sess;
        let logits = match want {
            Want::Last => Logits::Last(&mut s.logits),
            Want::All(out) => Logits::All(out),
            Want::None => Logits::None,
        };
        let mut rows = OneSession { kv, pos: *pos };
        self.pass(&mut s.act, &mut rows, tokens, par, logits)?;
        *pos += nb;
        Ok(())
    }

    /// The pass itself, top to bottom, for `tokens` (one per row of `rows`), with the
    /// activations in `s`.
    fn pass<R: Rows>(
        &self,
        s: &mut Activations,
        rows: &mut R,
        tokens: &[u32],
        par: &dyn Parallel,
        logits: Logits<'_>,
    ) -> Result<(), SessionError> {
        let hp = &self.hp;
        let nb = tokens.len();
        if let Some(&t) = tokens.iter().find(|&&t| t >= hp.n_vocab) {
            return Err(SessionError::TokenOutOfRange(t));
        }
        let (head_dim, n_head, n_head_kv) = (hp.head_dim as usize, hp.n_head as usize, hp.n_head_kv as usize);
        let kv_mul = n_head / n_head_kv;
        let (n_embd, q_dim, kv_dim, n_ff) = (hp.n_embd as usize, self.q_dim(), self.kv_dim(), hp.n_ff as usize);
        let eps = hp.rms_eps;
        // Buffers made for another model, or for smaller batches, are refused (not sliced past).
        let fits = |buf: &[f32], n: usize| buf.len() >= nb * n;
        if !(fits(&s.x, n_embd) && fits(&s.xb, n_embd) && fits(&s.xb2, n_embd) && fits(&s.q, q_dim))
            || !(fits(&s.k, kv_dim) && fits(&s.v, kv_dim) && fits(&s.att_out, q_dim) && fits(&s.hb, n_ff))
            || !(fits(&s.hb2, n_ff) && s.q_att.len() >= q_dim && s.att.len() >= n_head)
        {
            return Err(SessionError::BatchSize { got: nb, max: s.x.len() / n_embd.max(1) });
        }
        // This batch's rows of every buffer.
        let x = &mut s.x[..nb * n_embd];
        let xb = &mut s.xb[..nb * n_embd];
        let xb2 = &mut s.xb2[..nb * n_embd];
        let (q, k, v) = (&mut s.q[..nb * q_dim], &mut s.k[..nb * kv_dim], &mut s.v[..nb * kv_dim]);
        let att_out = &mut s.att_out[..nb * q_dim];
        let (hb, hb2) = (&mut s.hb[..nb * n_ff], &mut s.hb2[..nb * n_ff]);

        // Token embeddings (scaled for Gemma).
        for (&t, row) in tokens.iter().zip(x.chunks_exact_mut(n_embd)) {
            self.tok_embd.dequantize_row(t as usize, row)?;
        }
        if let Some(scale) = self.arch.embd_scale {
            x.iter_mut().for_each(|v| *v *= scale);
        }

        for (il, l) in self.layers.iter().enumerate() {
            // ---- attention ----
            rms_norm_rows(xb, x, &l.attn_norm, eps, n_embd);
            project(par, xb, &mut s.xq, [&l.wq, &l.wk, &l.wv], [&mut *q, &mut *k, &mut *v])?;
            for (buf, bias) in [(&mut *q, &l.bq), (&mut *k, &l.bk), (&mut *v, &l.bv)] {
                if let Some(b) = bias {
                    for row in buf.chunks_exact_mut(b.len().max(1)) {
                        row.iter_mut().zip(b).for_each(|(x, b)| *x += b);
                    }
                }
            }
            // Per-head Q/K norms (Gemma 3), then RoPE at each token's position.
            for (buf, norm) in [(&mut *q, &l.q_norm), (&mut *k, &l.k_norm)] {
                if let Some(w) = norm {
                    buf.chunks_exact_mut(head_dim).for_each(|h| rms_norm_in_place(h, w, eps));
                }
            }
            for (b, (qr, kr)) in q.chunks_exact_mut(q_dim).zip(k.chunks_exact_mut(kv_dim)).enumerate() {
                let rope = Rope::new(
                    &mut s.rope,
                    rows.pos(b),
                    hp.n_rot as usize,
                    l.rope_base,
                    l.rope_freq_scale,
                    self.rope_freqs.as_deref(),
                    self.arch.rope_mode,
                );
                qr.chunks_exact_mut(head_dim).for_each(|h| rope.apply(h));
                kr.chunks_exact_mut(head_dim).for_each(|h| rope.apply(h));
            }
            let kq_scale = match self.arch.q_scale {
                Some(qs) => {
                    q.iter_mut().for_each(|v| *v *= qs);
                    1.0
                }
                None => 1.0 / libm::sqrtf(head_dim as f32),
            };

            // Store the batch's K and V, then each token attends over its window (causal: up to
            // its own position).
            for (b, (kr, vr)) in k.chunks_exact(kv_dim).zip(v.chunks_exact(kv_dim)).enumerate() {
                rows.store(il, b, kr, vr);
            }
            let first = |p: usize| match (l.is_swa, self.arch.sliding_window) {
                (true, Some(w)) => (p + 1).saturating_sub(w as usize),
                _ => 0,
            };
            // Heads in parallel: head h reads its queries and writes its own scores and outputs.
            // Each head's score row: the buffer's share, as long as every row's context.
            let (simd, n_ctx) = (isa::current(), s.att.len() / n_head);
            let (q_att, att, out_all) =
                (SharedMut::new(&mut s.q_att), SharedMut::new(&mut s.att), SharedMut::new(&mut *att_out));
            let (rows, q_all) = (&*rows, &*q);
            par.for_each(n_head, &|h| {
                let hd = h * head_dim..(h + 1) * head_dim;
                // SAFETY: head h is the only task given its slices of q_att and att, and its
                // head's slice of every token's row of att_out.
                let (Some(q_round), Some(att)) =
                    (unsafe { (q_att.slice(hd.start, hd.end), att.slice(h * n_ctx, (h + 1) * n_ctx)) })
                else {
                    return;
                };
                for b in 0..nb {
                    let at = b * q_dim;
                    let (Some(q), Some(out), Some(kv)) = (
                        q_all.get(at + hd.start..at + hd.end),
                        // SAFETY: as above, this head's slice of row b of att_out.
                        unsafe { out_all.slice(at + hd.start, at + hd.end) },
                        rows.kv(b),
                    ) else {
                        return;
                    };
                    let p = rows.pos(b);
                    let w = Window { layer: il, kv_head: h / kv_mul, first: first(p), pos: p };
                    let scratch = AttnScratch { q: &mut *q_round, att: &mut *att };
                    attend_head(simd, kv, w, q, kq_scale, scratch, out);
                }
            });
            project(par, att_out, &mut s.xq, [&l.wo], [&mut *xb2])?;
            if let Some(w) = &l.post_attn_norm {
                xb2.chunks_exact_mut(n_embd).for_each(|r| rms_norm_in_place(r, w, eps));
            }
            x.iter_mut().zip(&*xb2).for_each(|(x, d)| *x += d);

            // ---- feed-forward ----
            rms_norm_rows(xb, x, &l.ffn_norm, eps, n_embd);
            project(par, xb, &mut s.xq, [&l.w_gate, &l.w_up], [&mut *hb, &mut *hb2])?;
            // Row by row, so that every token meets exactly the element-wise kernels of a
            // batch of one.
            for (g, u) in hb.chunks_exact_mut(n_ff).zip(hb2.chunks_exact(n_ff)) {
                match (self.arch.activation, &self.gelu) {
                    (Activation::Gelu, Some(table)) => table.gelu_mul(g, u),
                    _ => silu_mul(g, u),
                }
            }
            project(par, hb, &mut s.xq, [&l.w_down], [&mut *xb2])?;
            if let Some(w) = &l.post_ffn_norm {
                xb2.chunks_exact_mut(n_embd).for_each(|r| rms_norm_in_place(r, w, eps));
            }
            x.iter_mut().zip(&*xb2).for_each(|(x, d)| *x += d);
        }

        // Logits: of the last token, of every token, or none.
        let (from, logits) = match logits {
            Logits::Last(out) => (nb - 1, out),
            Logits::All(out) => (0, out),
            Logits::None => return Ok(()),
        };
        let xb = &mut xb[..(nb - from) * n_embd];
        rms_norm_rows(xb, &x[from * n_embd..], &self.output_norm, eps, n_embd);
        project(par, xb, &mut s.xq, [&self.output], [&mut *logits])?;
        if let Some(cap) = hp.final_logit_softcapping {
            logits.iter_mut().for_each(|v| *v = libm::tanhf(*v / cap) * cap);
        }
        Ok(())
    }
}

/// Which logits a pass computes.
enum Logits<'a> {
    /// The last row's, into a buffer of `n_vocab`.
    Last(&'a mut [f32]),
    /// Every row's, row after row.
    All(&'a mut [f32]),
    /// None.
    None,
}

/// Which logits a batch of one session asks for.
enum Want<'a> {
    /// The last token's, into the session's buffer.
    Last,
    /// Every token's, into this buffer.
    All(&'a mut [f32]),
    /// None.
    None,
}

/// Where each row of a batch belongs: its position and KV cache.
trait Rows: Sync {
    /// Row `b`'s position.
    fn pos(&self, b: usize) -> usize;
    /// The cache row `b` attends over (`None` past the last row).
    fn kv(&self, b: usize) -> Option<&KvCache>;
    /// Stores row `b`'s key and value for `layer`.
    fn store(&mut self, layer: usize, b: usize, k: &[f32], v: &[f32]);
}

/// Consecutive positions of one session, from `pos`.
struct OneSession<'a> {
    kv: &'a mut KvCache,
    pos: usize,
}

impl Rows for OneSession<'_> {
    fn pos(&self, b: usize) -> usize {
        self.pos + b
    }
    fn kv(&self, _: usize) -> Option<&KvCache> {
        Some(self.kv)
    }
    fn store(&mut self, layer: usize, b: usize, k: &[f32], v: &[f32]) {
        self.kv.store(layer, self.pos + b, k, v);
    }
}

/// One row per session, each at its next position.
struct EachSession<'a, 's> {
    sessions: &'a mut [&'s mut Session],
}

impl Rows for EachSession<'_, '_> {
    fn pos(&self, b: usize) -> usize {
        self.sessions.get(b).map_or(0, |s| s.pos)
    }
    fn kv(&self, b: usize) -> Option<&KvCache> {
        self.sessions.get(b).map(|s| &s.kv)
    }
    fn store(&mut self, layer: usize, b: usize, k: &[f32], v: &[f32]) {
        if let Some(s) = self.sessions.get_mut(b) {
            let pos = s.pos;
            s.kv.store(layer, pos, k, v);
        }
    }
}

/// RMSNorm of each `n`-element row of `x` into `out`.
fn rms_norm_rows(out: &mut [f32], x: &[f32], w: &[f32], eps: f32, n: usize) {
    for (o, r) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
        rms_norm(o, r, w, eps);
    }
}
