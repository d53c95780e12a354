//! The forward pass of one token, top to bottom.

use super::{Activation, Model};
use crate::isa;
use crate::ops::{attend_head, project, rms_norm, rms_norm_in_place, silu_mul, AttnScratch, Rope, Window};
use crate::platform::{Parallel, SharedMut};
use crate::session::{Session, SessionError};

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
            let first = match (l.is_swa, self.arch.sliding_window) {
                (true, Some(w)) => (pos + 1).saturating_sub(w as usize),
                _ => 0,
            };
            // Heads in parallel: head h reads its query and writes its own scores and output.
            let (simd, n_ctx) = (isa::current(), kv.n_ctx);
            let (q_att, att, att_out) =
                (SharedMut::new(&mut s.q_att), SharedMut::new(&mut s.att), SharedMut::new(&mut s.att_out));
            let (kv, q_all) = (&*kv, &s.q);
            par.for_each(n_head, &|h| {
                let hd = h * head_dim..(h + 1) * head_dim;
                // SAFETY: head h is the only task given its slices of q_att, att and att_out.
                let (Some(q), Some(q_round), Some(att), Some(out)) = (
                    q_all.get(hd.clone()),
                    unsafe { q_att.slice(hd.start, hd.end) },
                    unsafe { att.slice(h * n_ctx, (h + 1) * n_ctx) },
                    unsafe { att_out.slice(hd.start, hd.end) },
                ) else {
                    return;
                };
                let w = Window { layer: il, kv_head: h / kv_mul, first, pos };
                attend_head(simd, kv, w, q, kq_scale, AttnScratch { q: q_round, att }, out);
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
                (Activation::Gelu, Some(table)) => table.gelu_mul(&mut s.hb, &s.hb2),
                _ => silu_mul(&mut s.hb, &s.hb2),
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
