//! Decoding allocates nothing: 64 greedy steps (forward pass on the thread pool, sampling, piece
//! decoding into a reserved buffer) under a counting global allocator must make zero allocations,
//! on every model CI provides.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llamux_core::gguf::Gguf;
use llamux_core::model::Model;
use llamux_core::platform::{Parallel, Serial, Threads};
use llamux_core::sample::{Sampler, SamplerConfig};
use llamux_core::session::Session;
use llamux_core::tokenizer::Tokenizer;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

mod common;
use common::asset;

/// Counts allocations (from every thread) while `COUNTING` is set.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by 64 decoding steps after a short prompt.
fn allocations_while_decoding(path: &std::path::Path, par: &dyn Parallel, temp: f32) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let model = Model::load(&g).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let mut sess = Session::new(&model, 256);
    let cfg = SamplerConfig { temperature: temp, ..SamplerConfig::default() };
    let mut sampler = Sampler::new(cfg, model.hp.n_vocab as usize).unwrap();
    let prompt = tok.encode(b"The quick brown fox", true, true);
    let mut recent: Vec<u32> = Vec::with_capacity(256);
    let mut text: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut logits = vec![0.0f32; model.hp.n_vocab as usize];
    for &t in &prompt {
        logits.copy_from_slice(model.forward(&mut sess, t, par).unwrap());
        recent.push(t);
    }
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    for _ in 0..64 {
        let next = sampler.sample(&mut logits, &recent);
        recent.push(next);
        tok.append_piece(next, false, &mut text);
        logits.copy_from_slice(model.forward(&mut sess, next, par).unwrap());
    }
    COUNTING.store(false, Ordering::Relaxed);
    ALLOCS.load(Ordering::Relaxed)
}

#[test]
fn decoding_makes_no_allocations() {
    let mut checked = 0;
    for var in ["LLAMUX_GEMMA", "LLAMUX_TINYLLAMA", "LLAMUX_QWEN2", "LLAMUX_SMOLLM2"] {
        let Some(path) = asset(var) else { continue };
        let pool = Threads::new(2);
        for (name, par, temp) in
            [("2 threads, greedy", &pool as &dyn Parallel, 0.0), ("serial, temp 0.8", &Serial as &dyn Parallel, 0.8)]
        {
            let n = allocations_while_decoding(&path, par, temp);
            assert_eq!(n, 0, "{var} ({name}): {n} allocations in 64 decoding steps");
        }
        checked += 1;
    }
    eprintln!("zero allocations over 64 decoding steps checked on {checked} models");
}
