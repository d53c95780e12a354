//! Decoding allocates nothing: up to 64 steps of the generation loop every host uses (sampling,
//! piece decoding, stop-string matching, forward pass on the thread pool) under a counting global
//! allocator must make zero allocations, on every model CI provides.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llamux_core::gguf::Gguf;
use llamux_core::model::Model;
use llamux_core::platform::{Parallel, Serial, Threads};
use llamux_core::sample::{Sampler, SamplerConfig};
use llamux_core::session::{Generation, Session, Step};
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

/// Allocations made by up to 64 decoding steps of the generation loop after a short prompt,
/// and the number of tokens generated.
fn allocations_while_decoding(path: &std::path::Path, par: &dyn Parallel, temp: f32) -> (usize, usize) {
    let bytes = std::fs::read(path).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let model = Model::load(&g).unwrap();
    let tok = Tokenizer::from_gguf(&g).unwrap();
    let mut sess = Session::new(&model, 256).unwrap();
    let cfg = SamplerConfig { temperature: temp, ..SamplerConfig::default() };
    let sampler = Sampler::new(cfg, model.hp.n_vocab as usize).unwrap();
    let prompt = tok.encode(b"The quick brown fox", true, true);
    // A stop string that will not occur keeps the stop-string matching running every token.
    let stop: &[&[u8]] = &[b"\x01never\x02"];
    let mut gen = Generation::new(sampler, prompt, 0, 64, stop).unwrap();
    while gen.feeding_prompt() {
        gen.step(&model, &tok, &mut sess, par).unwrap();
    }
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let mut text_bytes = 0;
    while let Step::Token { piece, .. } = gen.step(&model, &tok, &mut sess, par).unwrap() {
        text_bytes += piece.len();
    }
    COUNTING.store(false, Ordering::Relaxed);
    assert!(text_bytes > 0);
    (ALLOCS.load(Ordering::Relaxed), gen.generated())
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
            let (n, steps) = allocations_while_decoding(&path, par, temp);
            assert_eq!(n, 0, "{var} ({name}): {n} allocations in {steps} decoding steps");
            eprintln!("{var} ({name}): no allocation in {steps} decoding steps");
        }
        checked += 1;
    }
    eprintln!("zero allocations over 64 decoding steps checked on {checked} models");
}
