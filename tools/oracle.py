#!/usr/bin/env python3
"""Records llama.cpp's greedy generations and logits as fixtures (the reference for llamux).

For every prompt: llama.cpp's tokenization (BOS added, special tokens parsed), its 64 greedy
tokens, and at every step its top-20 logits. With --check FILE instead, it reads llamux's own
generations (JSON lines from `llamux run --json`) and reports, for each of our tokens, its logit
in llama.cpp's distribution at that step against llama.cpp's maximum (the free-running check).

usage: oracle.py record MODEL OUT.json [--name NAME]
       oracle.py check MODEL OURS.jsonl FIXTURE.json
       oracle.py perplexity MODEL TEXT N_CTX N_CHUNKS
Run through `cargo xtask oracle-fixtures` / `cargo xtask oracle-check`.
"""
import json
import sys

import numpy as np
from llama_cpp import Llama

PROMPTS = [
    "The capital of France is",
    "Once upon a time, there was a little robot who",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "1, 2, 3, 5, 8, 13, 21,",
    "Le chat est sur la table. Die Katze ist",
    "東京は日本の首都です。大阪は",
    "I love pizza 🍕 and ice cream 🍦 because",
    "   leading spaces and\ttabs",
    "Line one\nLine two\n\nLine four:",
    "Q: What is 17 times 3?\nA:",
]
N_GEN = 64
TOP = 20
N_CTX = 512


def load(model: str) -> Llama:
    return Llama(model_path=model, n_ctx=N_CTX, n_threads=2, n_batch=512, logits_all=True, verbose=False, seed=0)


def top_k(logits: np.ndarray, k: int) -> list:
    idx = np.argsort(-logits, kind="stable")[:k]
    return [[int(i), float(logits[i])] for i in idx]


def record(model: str, out: str, name: str) -> int:
    llm = load(model)
    cases = []
    for text in PROMPTS:
        toks = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        llm.reset()
        # One token at a time, as llamux evaluates: llama.cpp's batched prompt path rounds
        # differently (by up to ~0.4 logit on gemma3-270m), which would blur the comparison.
        for t in toks:
            llm.eval([t])
        gen, tops = [], []
        for _ in range(N_GEN):
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            nxt = int(np.argmax(logits))
            tops.append(top_k(logits, TOP))
            gen.append(nxt)
            if llm.n_tokens >= N_CTX:
                break
            llm.eval([nxt])
        cases.append({"prompt": text, "prompt_tokens": toks, "tokens": gen, "top": tops})
        print(f"{name}: {text[:30]!r}: {len(toks)} prompt tokens -> "
              f"{llm.detokenize(gen).decode('utf-8', 'replace')[:60]!r}", file=sys.stderr)
    with open(out, "w") as f:
        json.dump({"model": name, "n_ctx": N_CTX, "llama_cpp_python": __import__("llama_cpp").__version__,
                   "prompts": cases}, f, separators=(",", ":"))
    return 0


def check(model: str, ours_path: str, fixture_path: str) -> int:
    """Free-running check: llama.cpp's logits for the tokens we generated."""
    llm = load(model)
    worst_gap, n_identical, n_total = 0.0, 0, 0
    ok = True
    with open(ours_path) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    fixture = {c["prompt"]: c for c in json.load(open(fixture_path))["prompts"]}
    for run in runs:
        toks = run["prompt_tokens"]
        llm.reset()
        for t in toks:
            llm.eval([t])
        max_gap = 0.0
        for t in run["tokens"]:
            logits = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            gap = float(logits.max() - logits[t])
            max_gap = max(max_gap, gap)
            llm.eval([t])
        worst_gap = max(worst_gap, max_gap)
        ref = fixture.get(run.get("prompt", ""), {}).get("tokens")
        same = ref is not None and ref[: len(run["tokens"])] == run["tokens"]
        n_identical += same
        n_total += 1
        ok &= max_gap <= 0.5
        print(f"{run.get('prompt', '')[:30]!r}: {len(run['tokens'])} tokens, largest gap to llama.cpp's max "
              f"{max_gap:.4f}{', identical to llama.cpp' if same else ''}")
    print(f"free-running: worst gap {worst_gap:.4f} (limit 0.5); {n_identical}/{n_total} prompts identical")
    return 0 if ok else 1


def perplexity(model: str, path: str, n_ctx: int, n_chunks: int) -> int:
    """llama-perplexity's computation through llama-cpp-python: text tokenized once with BOS,
    chunks of n_ctx tokens with BOS first, each evaluated as one batch, second half scored."""
    llm = Llama(model_path=model, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=2, logits_all=True, verbose=False)
    tokens = llm.tokenize(open(path, "rb").read(), add_bos=True, special=False)
    n_chunks = min(n_chunks, len(tokens) // n_ctx)
    first = n_ctx // 2
    nll, count = 0.0, 0
    for c in range(n_chunks):
        chunk = tokens[c * n_ctx:(c + 1) * n_ctx]
        chunk[0] = llm.token_bos()
        llm.reset()
        llm.eval(chunk)
        for j in range(first, n_ctx - 1):
            logits = np.array(llm.scores[j], dtype=np.float64)
            m = logits.max()
            nll += -(logits[chunk[j + 1]] - m - np.log(np.exp(logits - m).sum()))
            count += 1
    ppl = float(np.exp(nll / count))
    print(json.dumps({"ppl": ppl, "chunks": n_chunks, "n_ctx": n_ctx, "tokens_scored": count}))
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "perplexity":
        sys.exit(perplexity(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    if sys.argv[1] == "record":
        name = sys.argv[sys.argv.index("--name") + 1] if "--name" in sys.argv else sys.argv[2]
        sys.exit(record(sys.argv[2], sys.argv[3], name))
    sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4]))
