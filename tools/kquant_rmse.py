#!/usr/bin/env python3
"""Compares llamux's K-quant quantizers with llama.cpp's on real weights.

The weights are those of the default model (Gemma 3 270M), dequantized with the `gguf` package
(bit-exact with ggml and with llamux) and cut into rows of 2560 values. For each K-quant type:

  * llama.cpp: `ggml_quantize_chunk` from llama.cpp's libggml-base (what `llama-quantize` calls for
    every tensor when no importance matrix is given), through ctypes;
  * llamux: `llamux quantize SRC OUT <ftype> --pure` on the same floats.

Both results are dequantized with `gguf` and compared with the source. Passes when llamux's RMSE is
at most 1.05x llama.cpp's for every type.

usage: kquant_rmse.py LLAMUX_BINARY GEMMA_GGUF          (run through `cargo xtask kquant-rmse`)
"""
import ctypes
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import gguf
import llama_cpp
from gguf import GGMLQuantizationType as T

ROW = 2560
MAX_ROWS_PER_TENSOR = 4096  # token_embd alone holds 168M values; a slice of it is plenty
TYPES = [(T.Q2_K, "q2_k"), (T.Q3_K, "q3_k_s"), (T.Q4_K, "q4_k_s"), (T.Q5_K, "q5_k_s"), (T.Q6_K, "q6_k")]


def ggml_lib() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    return lib


def llama_quantize(lib: ctypes.CDLL, qtype: T, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    n_rows = x.shape[0]
    block, size = gguf.constants.GGML_QUANT_SIZES[qtype]
    out = np.zeros((n_rows, ROW // block * size), dtype=np.uint8)
    written = lib.ggml_quantize_chunk(int(qtype), x.ctypes.data, out.ctypes.data, 0, n_rows, ROW, None)
    assert written == out.nbytes, (written, out.nbytes)
    return out


def source_tensors(gemma: Path) -> dict[str, np.ndarray]:
    r = gguf.GGUFReader(str(gemma))
    out = {}
    for t in r.tensors:
        if len(t.shape) < 2:
            continue
        x = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        n = x.size // ROW
        out[t.name] = x[: min(n, MAX_ROWS_PER_TENSOR) * ROW].reshape(-1, ROW)
    return out


def main() -> int:
    llamux, gemma = sys.argv[1], Path(sys.argv[2])
    lib = ggml_lib()
    src = source_tensors(gemma)
    n_values = sum(x.size for x in src.values())
    print(f"{len(src)} weight tensors of {gemma.name}, {n_values} values in rows of {ROW}")
    ok = True
    with tempfile.TemporaryDirectory() as d:
        src_path = Path(d) / "src-f32.gguf"
        w = gguf.GGUFWriter(str(src_path), "llamux-rmse-probe")
        for name, x in src.items():
            w.add_tensor(name, x)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        print(f"{'type':6} {'llama.cpp RMSE':>15} {'llamux RMSE':>12} {'ratio':>7} {'identical blocks':>17}")
        for qtype, ftype in TYPES:
            ours_path = Path(d) / f"ours-{ftype}.gguf"
            subprocess.run([llamux, "quantize", str(src_path), str(ours_path), ftype, "--pure"], check=True,
                           stderr=subprocess.DEVNULL)
            ours = {t.name: t for t in gguf.GGUFReader(str(ours_path)).tensors}
            err_ref = err_ours = 0.0
            same = blocks = 0
            _, size = gguf.constants.GGML_QUANT_SIZES[qtype]
            for name, x in src.items():
                t = ours[name]
                assert t.tensor_type == qtype, (name, t.tensor_type)
                q_ours = np.asarray(t.data).reshape(x.shape[0], -1)
                q_ref = llama_quantize(lib, qtype, x)
                d_ref = gguf.quants.dequantize(q_ref, qtype).reshape(x.shape)
                d_ours = gguf.quants.dequantize(q_ours, qtype).reshape(x.shape)
                err_ref += float(((d_ref.astype(np.float64) - x) ** 2).sum())
                err_ours += float(((d_ours.astype(np.float64) - x) ** 2).sum())
                a, b = q_ref.reshape(-1, size), q_ours.reshape(-1, size)
                same += int((a == b).all(axis=1).sum())
                blocks += a.shape[0]
            r_ref, r_ours = (err_ref / n_values) ** 0.5, (err_ours / n_values) ** 0.5
            ratio = r_ours / r_ref
            ok &= ratio <= 1.05
            print(f"{qtype.name:6} {r_ref:15.6e} {r_ours:12.6e} {ratio:7.4f} {same / blocks:16.2%}")
            ours_path.unlink()
    print("PASS: every K-quant within 1.05x of llama.cpp's RMSE" if ok else "FAIL: a K-quant exceeds 1.05x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
