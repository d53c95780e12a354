//! Any bytes as any supported block type: dequantization and dot products never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llamux_core::quant::{supported_types, traits};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let types: Vec<_> = supported_types().collect();
    let ty = types[selector as usize % types.len()];
    let Ok(tr) = traits(ty) else { return };
    let blocks = rest.len() / ty.type_size();
    let mut out = vec![0f32; blocks * ty.block_size()];
    let _ = (tr.to_float)(&rest[..blocks * ty.type_size()], &mut out);
    let _ = (tr.to_float)(rest, &mut out);
    let _ = (tr.vec_dot_unopt)(rest, rest);
});
