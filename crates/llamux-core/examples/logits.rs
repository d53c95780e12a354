//! Prints the top logits after feeding token ids: `cargo run --release --features std --example
//! logits -- MODEL ID [ID …]` (a debugging aid for comparisons with llama.cpp). With
//! `LLAMUX_KV=f32` in the environment the KV cache is f32.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use llamux_core::gguf::Gguf;
use llamux_core::model::Model;
use llamux_core::platform::Threads;
use llamux_core::session::{KvType, Session};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).expect("model file");
    let g = Gguf::parse(&bytes).unwrap();
    let model = Model::load(&g).unwrap();
    let kv = if std::env::var("LLAMUX_KV").as_deref() == Ok("f32") { KvType::F32 } else { KvType::F16 };
    let mut sess = Session::with_kv_type(&model, 512, kv).expect("memory for a session");
    let par = Threads::new(0);
    let mut logits = Vec::new();
    for t in &args[2..] {
        logits = model.forward(&mut sess, t.parse().unwrap(), &par).unwrap().to_vec();
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    for &i in &idx[..10] {
        println!("{i} {}", logits[i]);
    }
}
