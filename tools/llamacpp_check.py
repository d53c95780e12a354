#!/usr/bin/env python3
"""Loads `llamux synth` models with llama.cpp (llama-cpp-python) and evaluates them.

For each shape/file type: synthesize, load with llama.cpp, tokenize a prompt with llama.cpp's own
tokenizer on our copied vocabulary, evaluate it, check the logits are finite and not degenerate,
and decode greedily to check generation is not one repeated token.

usage: llamacpp_check.py LLAMUX_BINARY [--full]   (--full adds the 1.1B TinyLlama shape)
Run through `cargo xtask llamacpp-check`.
"""
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from llama_cpp import Llama

PROMPT = b"Once upon a time, in a small village by the sea,"
N_GEN = 32


def check(path: Path) -> bool:
    llm = Llama(model_path=str(path), n_ctx=256, n_threads=2, n_batch=64, logits_all=True, verbose=False)
    tokens = llm.tokenize(PROMPT, add_bos=True)
    llm.eval(tokens)
    logits = np.array(llm.scores[len(tokens) - 1], dtype=np.float64)
    finite = bool(np.isfinite(logits).all())
    std = float(logits.std())
    gen = []
    for tok in llm.generate(tokens, temp=0.0, reset=True):
        gen.append(tok)
        if len(gen) == N_GEN:
            break
    distinct = len(set(gen))
    text = llm.detokenize(gen).decode("utf-8", "replace")
    ok = finite and std > 0.5 and distinct > 1
    print(f"{path.name}: n_vocab {llm.n_vocab()}, prompt {len(tokens)} tokens, logits finite={finite} "
          f"std={std:.2f} max={logits.max():.2f}; greedy {len(gen)} tokens, {distinct} distinct: {text[:80]!r} "
          f"-> {'OK' if ok else 'FAIL'}")
    return ok


def main() -> int:
    llamux = sys.argv[1]
    cases = [("tiny", f) for f in ["q4_k_m", "q8_0", "f16", "q4_0", "q5_k_m", "q6_k", "q2_k", "q3_k_m"]]
    if "--full" in sys.argv:
        cases.append(("tinyllama", "q4_k_m"))
    ok = True
    with tempfile.TemporaryDirectory() as d:
        for shape, ftype in cases:
            p = Path(d) / f"synth-{shape}-{ftype}.gguf"
            subprocess.run([llamux, "synth", "--shape", shape, "--ftype", ftype, "-o", str(p)], check=True)
            ok &= check(p)
            p.unlink()
    print("llama.cpp loaded and ran every synthesized model" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
