#!/usr/bin/env python3
"""Writes golden fixtures for every block format from ggml's definitions in the PyPI `gguf` package.

`gguf.quants` reimplements ggml's reference quantize/dequantize in numpy. For each format this
writes, into one GGUF file (itself written by gguf-py, so the reader is checked against it too):

  <fmt>.raw      random blocks (random bits, with finite half-precision scale fields)
  <fmt>.raw.deq  gguf's dequantization of <fmt>.raw                      (f32)
  <fmt>.src      random floats (several distributions, plus edge-case blocks)  (f32)
  <fmt>.q        gguf's quantization of <fmt>.src, where gguf implements it
  <fmt>.deq      gguf's dequantization of <fmt>.q

Run through `cargo xtask fixtures`; the output is committed and compared bit for bit by
crates/llamux-core/tests/quant_golden.rs.
"""
import argparse
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

SEED = 20261123
ELEMENTS = 4096  # 128 legacy blocks or 16 K-quant blocks per format

# Offsets of the f16 scale fields within each block, which get finite random values.
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
QUANTIZABLE = [T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]
DEQUANT_ONLY = [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]


def source_floats(rng: np.random.Generator, n: int, block: int) -> np.ndarray:
    """Mixed distributions, plus blocks that exercise edge cases of the reference quantizers."""
    parts = [
        rng.normal(0, 1, n // 4),
        rng.normal(0, 0.02, n // 4) * rng.choice([1, 10], n // 4),
        rng.uniform(-3, 3, n // 4),
        rng.standard_t(3, n // 4) * 0.1,
    ]
    x = np.concatenate(parts).astype(np.float32)
    specials = [
        np.zeros(block, np.float32),                 # all zero: d = 0
        np.full(block, 0.75, np.float32),            # constant positive: max == min
        np.full(block, -1.25, np.float32),           # constant negative
        np.linspace(-1, 1, block, dtype=np.float32),  # exact ties at the ends
        np.where(np.arange(block) == 5, -40.0, 0.01).astype(np.float32),  # one large negative outlier
    ]
    for i, s in enumerate(specials):
        x[i * block:(i + 1) * block] = s
    return x


def random_blocks(rng: np.random.Generator, qtype: T, n: int) -> np.ndarray:
    block, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (n // block, size), dtype=np.uint8)
    for off in HALF_FIELDS.get(qtype, []):
        h = (rng.normal(0, 1, n // block) * 0.05).astype(np.float16)
        raw[:, off:off + 2] = h.view(np.uint8).reshape(-1, 2)
    return raw


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output .gguf path")
    args = ap.parse_args()

    rng = np.random.default_rng(SEED)
    w = gguf.GGUFWriter(args.out, "llamux-fixtures")
    w.add_string("fixtures.generator", f"tools/quant_fixtures.py, gguf {gguf.__version__ if hasattr(gguf, '__version__') else 'py'}")
    w.add_uint32("fixtures.seed", SEED)

    for qtype in QUANTIZABLE + DEQUANT_ONLY:
        name = qtype.name.lower()
        block, size = GGML_QUANT_SIZES[qtype]
        if qtype in HALF_FIELDS:
            raw = random_blocks(rng, qtype, ELEMENTS)
            w.add_tensor(f"{name}.raw", raw.reshape(1, -1), raw_dtype=qtype)
            w.add_tensor(f"{name}.raw.deq", gguf.quants.dequantize(raw, qtype).reshape(-1).astype(np.float32))
        if qtype in QUANTIZABLE:
            src = source_floats(rng, ELEMENTS, block)
            q = gguf.quants.quantize(src.reshape(1, -1), qtype)
            w.add_tensor(f"{name}.src", src)
            w.add_tensor(f"{name}.q", q.reshape(1, -1), raw_dtype=qtype)
            w.add_tensor(f"{name}.deq", gguf.quants.dequantize(q, qtype).reshape(-1).astype(np.float32))

    # f16: numpy's round-to-nearest-even conversion, and back.
    src = source_floats(rng, ELEMENTS, 32)
    w.add_tensor("f16.src", src)
    w.add_tensor("f16.q", src.astype(np.float16))
    # bf16 edge cases: NaN quieting, infinities, rounding ties.
    edge = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.00390625, 1.01171875, 3.0e38, 1e-40],
                    dtype=np.float32)
    w.add_tensor("bf16.edge.src", edge)
    w.add_tensor("bf16.edge.q", gguf.quants.quantize(edge, T.BF16).reshape(-1), raw_dtype=T.BF16)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
