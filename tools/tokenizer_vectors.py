#!/usr/bin/env python3
"""Records llama.cpp's tokenization of its own tokenizer test strings (the `.inp` files of
`ggml-vocab-llama-spm` and `ggml-vocab-llama-bpe`) with another model's vocabulary, for
vocabularies that ship no vectors (gemma3's, SmolLM2's). Without BOS, without parsing special
tokens, as llama.cpp's test-tokenizer-0 does. With `--extra`, a few more strings aimed at
pre-tokenizer corners (digits next to spaces, non-ASCII digits and spaces, contractions, chat
markers written as text) are appended.

usage: tokenizer_vectors.py MODEL.gguf VOCAB_DIR OUT.json [--extra]   (needs `cargo xtask oracle`)
"""
import json
import sys
from pathlib import Path

from llama_cpp import Llama

SEP = b"\n__ggml_vocab_test__\n"

EXTRA = [
    "1 2  3   4\t5\n6",
    " 2024-05-17, 3.14159 and 1,000,000",
    "abc123def 456ghi",
    "x\u0663\u0664y \u00bd \u2460\u2461",
    "a\u00a0b\u3000c\u2003 d",
    "I'm, you're, they'll, we'd, it's, 'S, 'LL",
    "<|im_start|>user\nHi 42<|im_end|>",
    "    indented\n\n\n  code();  ",
    "\u4f60\u597d\u4e16\u754c 123 \U0001f600\U0001f600",
    "tab\t\tand  trailing   ",
]


def main() -> int:
    model, vocab_dir, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    extra = "--extra" in sys.argv[4:]
    llm = Llama(model_path=model, vocab_only=True, verbose=False)
    cases = []
    for name in ["llama-spm", "llama-bpe"]:
        raw = (vocab_dir / f"ggml-vocab-{name}.gguf.inp").read_bytes()
        for text in raw.split(SEP):
            ids = llm.tokenize(text, add_bos=False, special=False)
            cases.append({"text": text.decode("utf-8", "surrogateescape"), "ids": ids})
    for text in EXTRA if extra else []:
        ids = llm.tokenize(text.encode(), add_bos=False, special=False)
        cases.append({"text": text, "ids": ids})
    json.dump({"model": Path(model).name, "cases": cases}, open(out, "w"), ensure_ascii=False, indent=0)
    print(f"{len(cases)} cases", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
