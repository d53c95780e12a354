//! Any byte string: parsing returns a typed error or a file whose every accessor stays in bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llamux_core::gguf::Gguf;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = Gguf::parse(data) {
        for t in g.tensors() {
            assert_eq!(g.tensor_data(t).len(), t.size);
            assert!(g.tensor(t.name).is_some());
        }
        for kv in g.metadata() {
            if let Some(a) = kv.value.as_array() {
                assert_eq!(a.iter().count(), a.len());
            }
        }
    }
});
