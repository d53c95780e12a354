//! The GGUF reader and writer: round trips, and hostile input that must give typed errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llamux_core::gguf::{Gguf, GgufErrorKind, GgufWriter, MetaValue, ValueType};
use llamux_core::sample::Rng;
use llamux_core::GgmlType;

/// A small file using every value type, nested arrays, and tensors of several types.
fn sample_writer() -> (GgufWriter, Vec<Vec<u8>>) {
    let mut w = GgufWriter::new();
    w.add("general.architecture", "llama".into()).unwrap();
    w.add("u8", MetaValue::U8(200)).unwrap();
    w.add("i8", MetaValue::I8(-100)).unwrap();
    w.add("u16", MetaValue::U16(60000)).unwrap();
    w.add("i16", MetaValue::I16(-30000)).unwrap();
    w.add("u32", MetaValue::U32(4_000_000_000)).unwrap();
    w.add("i32", MetaValue::I32(-2_000_000_000)).unwrap();
    w.add("f32", MetaValue::F32(1.5)).unwrap();
    w.add("bool", MetaValue::Bool(true)).unwrap();
    w.add("string", "héllo ✓".into()).unwrap();
    w.add("u64", MetaValue::U64(u64::MAX)).unwrap();
    w.add("i64", MetaValue::I64(i64::MIN)).unwrap();
    w.add("f64", MetaValue::F64(-2.25)).unwrap();
    w.add("strings", MetaValue::strings(["a", "", "ccc"])).unwrap();
    w.add("floats", MetaValue::f32s([0.5, -1.0])).unwrap();
    w.add(
        "bools",
        MetaValue::Array { elem: ValueType::Bool, items: vec![MetaValue::Bool(false), MetaValue::Bool(true)] },
    )
    .unwrap();
    w.add("empty", MetaValue::Array { elem: ValueType::U64, items: vec![] }).unwrap();
    let inner = |v: &[i32]| MetaValue::i32s(v.iter().copied());
    w.add("nested", MetaValue::Array { elem: ValueType::Array, items: vec![inner(&[1, 2]), inner(&[]), inner(&[3])] })
        .unwrap();
    let tensors = [
        ("a", vec![8u64, 3], GgmlType::F32),
        ("b", vec![32], GgmlType::Q4_0),
        ("c", vec![256, 2], GgmlType::Q4_K),
        ("d", vec![5], GgmlType::F16),
    ];
    let mut data = Vec::new();
    let mut rng = Rng::new(3);
    for (name, ne, ty) in &tensors {
        w.add_tensor(name, ne, *ty).unwrap();
        let n = ty.bytes_for(ne.iter().product()).unwrap() as usize;
        data.push((0..n).map(|_| rng.next_u64() as u8).collect());
    }
    (w, data)
}

fn write(w: &GgufWriter, data: &[Vec<u8>]) -> Vec<u8> {
    let mut s = w.start(Vec::new()).unwrap();
    for d in data {
        s.write_tensor(d).unwrap();
    }
    s.finish().unwrap()
}

fn sample_file() -> Vec<u8> {
    let (w, data) = sample_writer();
    write(&w, &data)
}

#[test]
fn reads_back_everything_written() {
    let (_, data) = sample_writer();
    let bytes = sample_file();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.version(), 3);
    assert_eq!(g.architecture(), Some("llama"));
    assert_eq!(g.get_u64("u8"), Some(200));
    assert_eq!(g.get("i8").and_then(|v| v.as_i64()), Some(-100));
    assert_eq!(g.get_u64("u16"), Some(60000));
    assert_eq!(g.get("i16").and_then(|v| v.as_i64()), Some(-30000));
    assert_eq!(g.get_u64("u32"), Some(4_000_000_000));
    assert_eq!(g.get("i32").and_then(|v| v.as_i64()), Some(-2_000_000_000));
    assert_eq!(g.get_f64("f32"), Some(1.5));
    assert_eq!(g.get("bool").and_then(|v| v.as_bool()), Some(true));
    assert_eq!(g.get_str("string"), Some("héllo ✓"));
    assert_eq!(g.get_u64("u64"), Some(u64::MAX));
    assert_eq!(g.get("i64").and_then(|v| v.as_i64()), Some(i64::MIN));
    assert_eq!(g.get_f64("f64"), Some(-2.25));
    let strings: Vec<_> = g.get("strings").unwrap().as_array().unwrap().strings().collect();
    assert_eq!(strings, [Some("a"), Some(""), Some("ccc")]);
    let floats = g.get("floats").unwrap().as_array().unwrap();
    assert_eq!(floats.get(1).and_then(|v| v.as_f64()), Some(-1.0));
    assert_eq!(floats.get(2), None);
    assert!(g.get("empty").unwrap().as_array().unwrap().is_empty());
    let nested = g.get("nested").unwrap().as_array().unwrap();
    let lens: Vec<_> = nested.iter().map(|v| v.as_array().unwrap().len()).collect();
    assert_eq!(lens, [2, 0, 1]);
    assert_eq!(nested.get(2).unwrap().as_array().unwrap().get(0).and_then(|v| v.as_i64()), Some(3));

    assert_eq!(g.tensors().len(), 4);
    for (t, d) in g.tensors().iter().zip(&data) {
        assert_eq!(g.tensor_data(t), &d[..], "{}", t.name);
        assert_eq!(t.offset % 32, 0);
    }
    let c = g.tensor("c").unwrap();
    assert_eq!((c.dims(), c.ggml_type, c.row_len(), c.n_rows()), (&[256u64, 2][..], GgmlType::Q4_K, 256, 2));
    assert!(g.tensor("zz").is_none());
}

#[test]
fn rewriting_a_parsed_file_is_byte_identical() {
    let bytes = sample_file();
    let g = Gguf::parse(&bytes).unwrap();
    let mut w = GgufWriter::new();
    for kv in g.metadata() {
        w.add(kv.key, kv.value.into()).unwrap();
    }
    for t in g.tensors() {
        w.add_tensor(t.name, t.dims(), t.ggml_type).unwrap();
    }
    let data: Vec<Vec<u8>> = g.tensors().iter().map(|t| g.tensor_data(t).to_vec()).collect();
    assert_eq!(write(&w, &data), bytes);
}

#[test]
fn custom_alignment_and_version_2() {
    let mut w = GgufWriter::new().with_version(2);
    w.add("general.alignment", MetaValue::U32(64)).unwrap();
    w.add_tensor("x", &[3], GgmlType::F32).unwrap();
    w.add_tensor("y", &[1], GgmlType::F32).unwrap();
    let bytes = write(&w, &[vec![1; 12], vec![2; 4]]);
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!((g.version(), g.alignment()), (2, 64));
    assert_eq!(g.data_offset() % 64, 0);
    assert_eq!(g.tensor("y").unwrap().offset, 64);
}

#[test]
fn writer_refuses_inconsistent_input() {
    let mut w = GgufWriter::new();
    w.add("k", MetaValue::U8(1)).unwrap();
    assert!(w.add("k", MetaValue::U8(2)).is_err());
    assert!(w.add("mixed", MetaValue::Array { elem: ValueType::U8, items: vec![MetaValue::I8(1)] }).is_err());
    assert!(w.add("general.alignment", MetaValue::U32(3)).is_err());
    assert!(w.add_tensor("q", &[100], GgmlType::Q4_K).is_err());
    assert!(w.add_tensor("big", &[1, 2, 3, 4, 5], GgmlType::F32).is_err());
    assert!(w.add_tensor("huge", &[u64::MAX, 2], GgmlType::F32).is_err());
    w.add_tensor("t", &[4], GgmlType::F32).unwrap();
    assert!(w.add_tensor("t", &[4], GgmlType::F32).is_err());
    let mut s = w.start(Vec::new()).unwrap();
    assert!(s.write_tensor(&[0; 15]).is_err());
    s.write_tensor(&[0; 16]).unwrap();
    assert!(s.write_tensor(&[0; 16]).is_err());
    assert!(s.finish().is_ok());
    let s = w.start(Vec::new()).unwrap();
    assert!(s.finish().is_err(), "a missing tensor is refused");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = sample_file();
    let g = Gguf::parse(&bytes).unwrap();
    let needed = g.tensors().iter().map(|t| g.data_offset() + t.offset as usize + t.size).max().unwrap();
    for len in 0..bytes.len() {
        let r = Gguf::parse(&bytes[..len]);
        if len < needed {
            assert!(r.is_err(), "prefix of {len} bytes parsed");
        }
    }
}

#[test]
fn random_bit_flips_and_byte_stomps_never_panic() {
    let bytes = sample_file();
    let mut rng = Rng::new(42);
    let header_len = Gguf::parse(&bytes).unwrap().data_offset();
    for i in 0..20_000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let pos = rng.below(header_len as u64) as usize;
            if i % 2 == 0 {
                b[pos] ^= 1 << rng.below(8);
            } else {
                b[pos] = rng.next_u64() as u8;
            }
        }
        if let Ok(g) = Gguf::parse(&b) {
            // Whatever parses must be internally consistent.
            for t in g.tensors() {
                assert_eq!(g.tensor_data(t).len(), t.size);
                let _ = g.tensor(t.name);
            }
            for kv in g.metadata() {
                if let Some(a) = kv.value.as_array() {
                    assert_eq!(a.iter().count(), a.len());
                }
            }
        }
    }
}

/// Builds a raw file from parts for hand-made hostile cases.
struct Raw(Vec<u8>);

impl Raw {
    fn new(version: u32, n_tensors: u64, n_kv: u64) -> Self {
        let mut v = b"GGUF".to_vec();
        v.extend(version.to_le_bytes());
        v.extend(n_tensors.to_le_bytes());
        v.extend(n_kv.to_le_bytes());
        Raw(v)
    }
    fn u32(mut self, x: u32) -> Self {
        self.0.extend(x.to_le_bytes());
        self
    }
    fn u64(mut self, x: u64) -> Self {
        self.0.extend(x.to_le_bytes());
        self
    }
    fn str(self, s: &[u8]) -> Self {
        let mut r = self.u64(s.len() as u64);
        r.0.extend(s);
        r
    }
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend(b);
        self
    }
    fn pad(mut self, n: usize) -> Self {
        self.0.resize(n, 0);
        self
    }
    fn err(&self) -> GgufErrorKind {
        Gguf::parse(&self.0).expect_err("hostile file parsed").kind
    }
}

#[test]
fn hostile_headers_give_typed_errors() {
    use GgufErrorKind::*;
    assert!(matches!(Raw(b"GGML".to_vec()).pad(64).err(), BadMagic(_)));
    assert_eq!(Raw::new(1, 0, 0).err(), UnsupportedVersion(1));
    assert_eq!(Raw::new(0x0300_0000, 0, 0).err(), UnsupportedVersion(0x0300_0000));
    assert_eq!(Raw::new(3, u64::MAX, 0).err(), TooManyTensors(u64::MAX));
    assert_eq!(Raw::new(3, 0, 1 << 40).err(), TooManyMetadata(1 << 40));
    assert!(matches!(Raw(b"GGUF\x03\x00".to_vec()).err(), UnexpectedEof { .. }));
}

#[test]
fn hostile_metadata_gives_typed_errors() {
    use GgufErrorKind::*;
    let kv = || Raw::new(3, 0, 1).str(b"key");
    assert_eq!(kv().u32(13).pad(64).err(), UnknownValueType(13));
    assert_eq!(kv().u32(8).u64(u64::MAX).pad(64).err(), StringTooLong(u64::MAX));
    assert_eq!(kv().u32(8).u64(1000).pad(64).err(), StringTooLong(1000));
    assert_eq!(kv().u32(8).str(&[0xff, 0xfe]).err(), InvalidUtf8);
    assert_eq!(Raw::new(3, 0, 1).str(&[0xc3]).u32(0).bytes(&[0]).err(), InvalidUtf8);
    assert_eq!(kv().u32(7).bytes(&[2]).err(), InvalidBool(2));
    assert_eq!(kv().u32(9).u32(7).u64(3).bytes(&[1, 0, 9]).err(), InvalidBool(9));
    assert_eq!(kv().u32(9).u32(4).u64(u64::MAX / 2).pad(64).err(), ArrayTooLong(u64::MAX / 2));
    assert_eq!(kv().u32(9).u32(8).u64(1 << 50).pad(64).err(), ArrayTooLong(1 << 50));
    assert_eq!(kv().u32(9).u32(99).u64(1).pad(64).err(), UnknownValueType(99));
    // Arrays of arrays nested past the limit.
    let mut deep = kv().u32(9);
    for _ in 0..20 {
        deep = deep.u32(9).u64(1);
    }
    assert_eq!(deep.u32(0).u64(0).pad(1024).err(), NestingTooDeep);
    // Duplicate keys.
    let dup = Raw::new(3, 0, 2).str(b"k").u32(0).bytes(&[1]).str(b"k").u32(0).bytes(&[2]);
    assert_eq!(dup.err(), DuplicateKey);
    // general.alignment of the wrong type or value.
    assert_eq!(Raw::new(3, 0, 1).str(b"general.alignment").u32(10).u64(32).err(), AlignmentType(ValueType::U64));
    assert_eq!(Raw::new(3, 0, 1).str(b"general.alignment").u32(4).u32(48).err(), BadAlignment(48));
    assert_eq!(Raw::new(3, 0, 1).str(b"general.alignment").u32(4).u32(0).err(), BadAlignment(0));
}

#[test]
fn hostile_tensor_infos_give_typed_errors() {
    use GgufErrorKind::*;
    let t = || Raw::new(3, 1, 0).str(b"t");
    assert_eq!(t().u32(5).pad(128).err(), TooManyDims(5));
    assert_eq!(t().u32(2).u64(1 << 40).u64(1 << 40).u32(0).u64(0).pad(128).err(), SizeOverflow);
    assert_eq!(t().u32(1).u64(8).u32(4).u64(0).pad(128).err(), UnknownTensorType(4));
    assert_eq!(t().u32(1).u64(8).u32(99).u64(0).pad(128).err(), UnknownTensorType(99));
    assert!(matches!(t().u32(1).u64(100).u32(12).u64(0).pad(128).err(), RowNotBlockMultiple { .. }));
    assert_eq!(t().u32(1).u64(8).u32(0).u64(4).pad(128).err(), MisalignedTensor { offset: 4 });
    assert_eq!(t().u32(1).u64(8).u32(0).u64(0).pad(64).err(), TensorOutOfBounds { index: 0 });
    assert_eq!(t().u32(1).u64(8).u32(0).u64(u64::MAX - 31).pad(128).err(), TensorOutOfBounds { index: 0 });
    let two = |off_b: u64, name_b: &[u8]| {
        Raw::new(3, 2, 0).str(b"a").u32(1).u64(16).u32(0).u64(0).str(name_b).u32(1).u64(16).u32(0).u64(off_b).pad(256)
    };
    assert_eq!(two(64, b"a").err(), DuplicateTensorName);
    assert!(matches!(two(32, b"b").err(), OverlappingTensors { .. }));
    assert!(Gguf::parse(&two(64, b"b").0).is_ok());
}

#[test]
fn errors_carry_offsets_and_display() {
    let e = Gguf::parse(&Raw::new(3, 0, 1).str(b"key").u32(13).pad(64).0).unwrap_err();
    assert_eq!(e.offset, 24 + 8 + 3);
    assert!(e.to_string().contains("unknown metadata value type 13"), "{e}");
}
