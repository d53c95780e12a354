//! `llamux-trust`: the trust services every Llamux host shares, `#![no_std]` (+ `alloc`, every
//! allocation fallible and made once), so that the kernel module (`kernel/rust`) and userspace (`llamux`, the tools,
//! `llamux serve`) check and count exactly alike.
//!
//! * [`sign`] — model signatures: Ed25519 over the model file's SHA-256, kept in a small text
//!   file beside the model (`MODEL.sig`), verified against one trusted public key.
//! * [`audit`] — the audit record (time, who, prompt SHA-256, tokens in and out, outcome), its one
//!   line of text, and a fixed-size ring of the newest records.
//! * [`quota`] — per-principal limits (a uid in the kernel, a client address in `serve`):
//!   concurrent sessions and tokens per minute.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod audit;
pub mod hex;
pub mod quota;
pub mod sign;

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
