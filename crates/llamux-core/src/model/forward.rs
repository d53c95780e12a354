//! The forward pass of one token, top to bottom.

use super::{Activation, Model};
use crate::ops::{project, rms_norm, rms_norm_in_place, softmax, Rope};
use crate::platform::{Parallel, SharedMut};
use crate::quant::F16;
use crate::session::{KvType, Session, SessionError};

/// Rounds to half precision and back (what storing in, or converting for, an f16 tensor does).
#[inline]
fn f16_round(x: f32) -> f32 {
    F16::from_f32(x).to_f32()
}

impl Model<'_> {
    /// Runs token `token` at the session's next position; returns the logits.
    pub fn forward<'s>(
        &self,
        sess: &'s mut Session,
        token: u32,
        par: &dyn Parallel,
    ) -> Result<&'s [f32], SessionError> {
        let hp = &self.hp;
        let pos = sess.pos;
        if pos >= sess.n_ctx() {
            return Err(SessionError::ContextFull { n_ctx: sess.n_ctx() });
        }
        if token >= hp.n_vocab {
            return Err(SessionError::TokenOutOfRange(token));
        }
        let (head_dim, n_head, n_head_kv) = (hp.head_dim as usize, hp.n_head as usize, hp.n_head_kv as usize);
        let kv_mul = n_head / n_head_kv;
        let eps = hp.rms_eps;
        let Session { kv, s, .. } = sess;

        // Token embedding (scaled for Gemma).
        self.tok_embd.dequantize_row(token as usize, &mut s.x)?;
        if let Some(scale) = self.arch.embd_scale {
            s.x.iter_mut().for_each(|v| *v *= scale);
        }

        for (il, l) in self.layers.iter().enumerate() {
            // ---- attention ----
            rms_norm(&mut s.xb[..s.x.len()], &s.x, &l.attn_norm, eps);
            project(par, &s.xb[..s.x.len()], &mut s.xq, [&l.wq, &l.wk, &l.wv], [&mut s.q, &mut s.k, &mut s.v])?;
            for (buf, bias) in [(&mut s.q, &l.bq), (&mut s.k, &l.bk), (&mut s.v, &l.bv)] {
                if let Some(b) = bias {
                    buf.iter_mut().zip(b).for_each(|(x, b)| *x += b);
                }
            }
            // Per-head Q/K norms (Gemma 3), then RoPE.
            for (buf, norm) in [(&mut s.q, &l.q_norm), (&mut s.k, &l.k_norm)] {
                if let Some(w) = norm {
                    buf.chunks_exact_mut(head_dim).for_each(|h| rms_norm_in_place(h, w, eps));
                }
            }
            let freq_scale = 1.0 / hp.rope_scaling_factor;
            let rope = Rope::new(
                &mut s.rope,
                pos,
                hp.n_rot as usize,
                l.rope_base,
                freq_scale,
                self.rope_freqs.as_deref(),
                self.arch.rope_mode,
            );
            s.q.chunks_exact_mut(head_dim).for_each(|h| rope.apply(h));
            s.k.chunks_exact_mut(head_dim).for_each(|h| rope.apply(h));
            let kq_scale = match self.arch.q_scale {
                Some(qs) => {
                    s.q.iter_mut().for_each(|v| *v *= qs);
                    1.0
                }
                None => 1.0 / libm::sqrtf(head_dim as f32),
            };

            // Store this position's K and V, then attend over the window.
            kv.store(il, pos, &s.k, &s.v);
            let base = kv.index(il, 0);
            let half = kv.ty == KvType::F16;
            let first = match (l.is_swa, self.arch.sliding_window) {
                (true, Some(w)) => (pos + 1).saturating_sub(w as usize),
                _ => 0,
            };
            // Heads in parallel: head h reads its query and writes its own scores and output.
            let n_ctx = kv.n_ctx;
            let (q_att, att, att_out) =
                (SharedMut::new(&mut s.q_att), SharedMut::new(&mut s.att), SharedMut::new(&mut s.att_out));
            let (kv, q_all) = (&*kv, &s.q);
            par.for_each(n_head, &|h| {
                let kvh = h / kv_mul;
                let hd = h * head_dim..(h + 1) * head_dim;
                // SAFETY: head h is the only task given its slices of q_att, att and att_out.
                let (Some(q), Some(att), Some(out)) = (
                    unsafe { q_att.slice(hd.start, hd.end) },
                    unsafe { att.slice(h * n_ctx + first, h * n_ctx + pos + 1) },
                    unsafe { att_out.slice(hd.start, hd.end) },
                ) else {
                    return;
                };
                // ggml converts the query to the cache's type for the dot products ...
                for (d, &v) in q.iter_mut().zip(q_all.get(hd).unwrap_or(&[])) {
                    *d = if half { f16_round(v) } else { v };
                }
                for (t, a) in (first..=pos).zip(att.iter_mut()) {
                    *a = kv.key_dot(base + t * kv.kv_dim + kvh * head_dim, q) * kq_scale;
                }
                softmax(att);
                out.fill(0.0);
                for (t, &a) in (first..=pos).zip(att.iter()) {
                    // ... and the probabilities too for the product with V.
                    let a = if half { f16_round(a) } else { a };
                    kv.add_value(base + t * kv.kv_dim + kvh * head_dim, a, out);
                }
            });
            project(par, &s.att_out, &mut s.xq, [&l.wo], [&mut s.xb2])?;
            if let Some(w) = &l.post_attn_norm {
                rms_norm_in_place(&mut s.xb2, w, eps);
            }
            s.x.iter_mut().zip(&s.xb2).for_each(|(x, d)| *x += d);

            // ---- feed-forward ----
            rms_norm(&mut s.xb[..s.x.len()], &s.x, &l.ffn_norm, eps);
            project(par, &s.xb[..s.x.len()], &mut s.xq, [&l.w_gate, &l.w_up], [&mut s.hb, &mut s.hb2])?;
            match (self.arch.activation, &self.gelu) {
                (Activation::Gelu, Some(table)) => {
                    s.hb.iter_mut().zip(&s.hb2).for_each(|(g, u)| *g = table.gelu(*g) * u);
                }
                _ => s.hb.iter_mut().zip(&s.hb2).for_each(|(g, u)| *g = crate::ops::silu(*g) * u),
            }
            project(par, &s.hb, &mut s.xq, [&l.w_down], [&mut s.xb2])?;
            if let Some(w) = &l.post_ffn_norm {
                rms_norm_in_place(&mut s.xb2, w, eps);
            }
            s.x.iter_mut().zip(&s.xb2).for_each(|(x, d)| *x += d);
        }

        rms_norm(&mut s.xb[..s.x.len()], &s.x, &self.output_norm, eps);
        project(par, &s.xb[..s.x.len()], &mut s.xq, [&self.output], [&mut s.logits])?;
        if let Some(cap) = hp.final_logit_softcapping {
            s.logits.iter_mut().for_each(|v| *v = libm::tanhf(*v / cap) * cap);
        }
        sess.pos += 1;
        Ok(&sess.s.logits)
    }
}
