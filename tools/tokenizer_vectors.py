#!/usr/bin/env python3
"""Records llama.cpp's tokenization of its own tokenizer test strings (the `.inp` files of
`ggml-vocab-llama-spm` and `ggml-vocab-llama-bpe`) with another model's vocabulary, for
vocabularies that ship no vectors (gemma3's). Without BOS, without parsing special tokens, as
llama.cpp's test-tokenizer-0 does.

usage: tokenizer_vectors.py MODEL.gguf VOCAB_DIR OUT.json   (needs `cargo xtask oracle`)
"""
import json
import sys
from pathlib import Path

from llama_cpp import Llama

SEP = b"\n__ggml_vocab_test__\n"


def main() -> int:
    model, vocab_dir, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    llm = Llama(model_path=model, vocab_only=True, verbose=False)
    cases = []
    for name in ["llama-spm", "llama-bpe"]:
        raw = (vocab_dir / f"ggml-vocab-{name}.gguf.inp").read_bytes()
        for text in raw.split(SEP):
            ids = llm.tokenize(text, add_bos=False, special=False)
            cases.append({"text": text.decode("utf-8", "surrogateescape"), "ids": ids})
    json.dump({"model": Path(model).name, "cases": cases}, open(out, "w"), ensure_ascii=False, indent=0)
    print(f"{len(cases)} cases", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
