//! Debug aid: writes our GELU f16 table (65 536 little-endian u16) to a file.
#![allow(clippy::unwrap_used)]
use llamux_core::quant::F16;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let mut out = Vec::new();
    for i in 0..=u16::MAX {
        out.extend_from_slice(&F16::from_f32(llamux_core::ops::gelu_tanh(F16(i.to_le_bytes()).to_f32())).0);
    }
    std::fs::write(path, out).unwrap();
}
