#!/usr/bin/env python3
"""Drives `llamux serve` with the official `openai` Python client.

  serve_client.py check URL SPEC.json   requests from a spec, results as JSON on stdout
  serve_client.py bench URL [--clients 1,8] [--tokens 64] [--seconds 20]
                                         aggregate tokens/s of concurrent greedy streaming clients
  serve_client.py soak URL [--clients 32] [--seconds 60]
                                         many clients for a while: mixed requests, disconnects,
                                         every greedy answer checked against its reference

`check` spec: {"model": ID, "chat": {"messages": [...], "max_tokens": N},
"completion": {"prompt": P, "max_tokens": N}, "concurrent": [{"prompt": P, "max_tokens": N}, ...]}.
Greedy requests ask for the server's `return_tokens` extension, so that the caller can compare
token ids, not just text.
"""

import argparse
import json
import random
import sys
import threading
import time
import urllib.request

import openai


def client(url, timeout=120.0):
    # max_retries=0: a refused request must show up as refused, not be retried behind our back.
    return openai.OpenAI(base_url=url.rstrip("/") + "/v1", api_key="none", max_retries=0, timeout=timeout)


def extra_tokens(obj):
    """The `tokens` extension field of a choice (pydantic keeps unknown fields)."""
    extra = getattr(obj, "model_extra", None) or {}
    return list(extra.get("tokens") or [])


def chat(c, model, messages, max_tokens, stream):
    args = dict(model=model, messages=messages, max_tokens=max_tokens, temperature=0,
                extra_body={"return_tokens": True})
    if not stream:
        r = c.chat.completions.create(**args)
        ch = r.choices[0]
        return {"text": ch.message.content, "tokens": extra_tokens(ch), "finish_reason": ch.finish_reason,
                "usage": r.usage.model_dump(), "id": r.id, "model": r.model, "object": r.object}
    text, tokens, finish, usage, role, chunks = [], [], None, None, None, 0
    for chunk in c.chat.completions.create(stream=True, stream_options={"include_usage": True}, **args):
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
        for ch in chunk.choices:
            role = role or ch.delta.role
            text.append(ch.delta.content or "")
            tokens += extra_tokens(ch)
            finish = ch.finish_reason or finish
    return {"text": "".join(text), "tokens": tokens, "finish_reason": finish, "usage": usage, "role": role,
            "chunks": chunks}


def complete(c, model, prompt, max_tokens, stream, **kw):
    args = dict(model=model, prompt=prompt, max_tokens=max_tokens, temperature=kw.pop("temperature", 0),
                extra_body={"return_tokens": True}, **kw)
    if not stream:
        r = c.completions.create(**args)
        ch = r.choices[0]
        return {"text": ch.text, "tokens": extra_tokens(ch), "finish_reason": ch.finish_reason,
                "usage": r.usage.model_dump(), "id": r.id, "model": r.model, "object": r.object}
    text, tokens, finish, usage, chunks = [], [], None, None, 0
    first = None
    t0 = time.monotonic()
    for chunk in c.completions.create(stream=True, stream_options={"include_usage": True}, **args):
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage.model_dump()
        for ch in chunk.choices:
            if first is None and ch.text:
                first = time.monotonic() - t0
            text.append(ch.text)
            tokens += extra_tokens(ch)
            finish = ch.finish_reason or finish
    return {"text": "".join(text), "tokens": tokens, "finish_reason": finish, "usage": usage, "chunks": chunks,
            "ttft": first}


def in_threads(jobs):
    """Runs every job at once (one thread each, all released together); results in order."""
    results = [None] * len(jobs)
    start = threading.Barrier(len(jobs))

    def run(i):
        start.wait()
        try:
            results[i] = jobs[i]()
        except Exception as e:  # reported, not raised: the caller checks every result
            results[i] = {"error": f"{type(e).__name__}: {e}"}

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def check(url, spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    c = client(url)
    model = spec["model"]
    out = {"models": [m.id for m in c.models.list().data]}
    ch = spec["chat"]
    out["chat"] = {"whole": chat(c, model, ch["messages"], ch["max_tokens"], False),
                   "stream": chat(c, model, ch["messages"], ch["max_tokens"], True)}
    co = spec["completion"]
    out["completion"] = {"whole": complete(c, model, co["prompt"], co["max_tokens"], False),
                         "stream": complete(c, model, co["prompt"], co["max_tokens"], True)}
    jobs = [lambda p=p: complete(c, model, p["prompt"], p["max_tokens"], True) for p in spec["concurrent"]]
    out["concurrent"] = in_threads(jobs)
    # A refused parameter surfaces as the client's own error type.
    try:
        c.completions.create(model=model, prompt="x", max_tokens=1, n=2)
        out["n2"] = None
    except openai.BadRequestError as e:
        out["n2"] = {"status": e.status_code, "body": e.body}
    json.dump(out, sys.stdout)
    print()


PROMPTS = [
    "Once upon a time", "The capital of France is", "def fibonacci(n):", "In 1969, the first",
    "The best way to learn a language is", "Rust is a programming language that", "My favourite recipe",
    "Water boils at", "The quick brown fox", "Dear diary, today", "Three reasons to exercise:",
    "The history of the Roman Empire", "A haiku about autumn:", "Linux is", "To make a cup of tea,",
    "The meaning of life is", "Photosynthesis is the process", "In a distant galaxy", "Once, in Paris,",
    "The stock market", "Here is a list of fruits:", "The Pythagorean theorem states",
    "It was a dark and stormy night", "How to tie a tie:", "The moon", "Breaking news:",
    "A short poem about the sea:", "The first rule of programming", "Mount Everest", "Coffee or tea?",
    "The year is 2050.", "An elephant",
]


def metrics(url):
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=10) as r:
        text = r.read().decode()
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, v = line.rpartition(" ")
            vals[name] = float(v)
    return vals


def bench(url, clients, tokens, seconds):
    """Each of n clients sends greedy streaming completions back to back for `seconds`; the
    tokens that arrive within that window, over its length, are the aggregate tokens/s."""
    c = client(url)
    model = c.models.list().data[0].id
    rows = []
    for n in clients:
        counts = [0] * n
        ttfts = []
        errors = []
        deadline = time.monotonic() + seconds

        def worker(k):
            wc = client(url)
            i = k
            while time.monotonic() < deadline:
                t0 = time.monotonic()
                try:
                    s = wc.completions.create(model=model, prompt=PROMPTS[i % len(PROMPTS)], max_tokens=tokens,
                                              temperature=0, stream=True, extra_body={"return_tokens": True})
                    first = True
                    for chunk in s:
                        if time.monotonic() >= deadline:
                            s.close()
                            return
                        for ch in chunk.choices:
                            got = len(extra_tokens(ch))
                            if got and first:
                                ttfts.append(time.monotonic() - t0)
                                first = False
                            counts[k] += got
                except Exception as e:
                    errors.append(f"{type(e).__name__}: {e}")
                    return
                i += n

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = min(time.monotonic() - t0, seconds)
        if errors:
            sys.exit(f"bench: {len(errors)} clients failed: {errors[0]}")
        gen = sum(counts)
        ttfts.sort()
        row = {"clients": n, "tokens": gen, "seconds": round(wall, 2), "tokens_per_s": gen / wall,
               "per_client_tokens_per_s": gen / wall / n, "ttft_median_s": ttfts[len(ttfts) // 2] if ttfts else None}
        rows.append(row)
        print(json.dumps(row), flush=True)
        time.sleep(1)  # let cancelled streams leave the engine
    base = rows[0]["tokens_per_s"] or 1.0
    print(f"| clients | tokens in {seconds:g} s | aggregate tok/s | per client tok/s | median TTFT s | vs {rows[0]['clients']} |")
    print("| --: | --: | --: | --: | --: | --: |")
    for r in rows:
        ttft = "-" if r["ttft_median_s"] is None else f"{r['ttft_median_s']:.3f}"
        print(f"| {r['clients']} | {r['tokens']} | {r['tokens_per_s']:.1f} | "
              f"{r['per_client_tokens_per_s']:.1f} | {ttft} | {r['tokens_per_s'] / base:.2f}x |")


def soak(url, n_clients, seconds):
    c = client(url, timeout=300.0)
    model = c.models.list().data[0].id
    # References: each prompt alone, greedy, before the load starts.
    max_tokens = 24
    refs = {p: complete(c, model, p, max_tokens, False)["tokens"] for p in PROMPTS}
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    stats = {"ok": 0, "busy": 0, "errors": 0, "mismatches": 0, "disconnects": 0, "sampled": 0, "tokens": 0}
    latencies, ttfts, samples = [], [], []

    def note(key, n=1):
        with lock:
            stats[key] += n

    def worker(k):
        rng = random.Random(k)
        wc = client(url, timeout=300.0)
        while time.monotonic() < deadline:
            p = rng.choice(PROMPTS)
            kind = rng.random()
            t0 = time.monotonic()
            try:
                if kind < 0.1:
                    # Hang up after a few chunks: the server must drop the session.
                    s = wc.completions.create(model=model, prompt=p, max_tokens=200, temperature=0, stream=True)
                    for i, _ in enumerate(s):
                        if i == 3:
                            break
                    s.close()
                    note("disconnects")
                    continue
                if kind < 0.25:
                    r = complete(wc, model, p, rng.randint(8, 48), rng.random() < 0.5, temperature=0.8,
                                 seed=rng.randint(0, 1 << 30))
                    note("sampled")
                else:
                    r = complete(wc, model, p, max_tokens, rng.random() < 0.7)
                    if r["tokens"] != refs[p]:
                        note("mismatches")
                        with lock:
                            samples.append({"prompt": p, "got": r["tokens"], "want": refs[p]})
                note("ok")
                note("tokens", r["usage"]["completion_tokens"] if r.get("usage") else 0)
                with lock:
                    latencies.append(time.monotonic() - t0)
                    if r.get("ttft") is not None:
                        ttfts.append(r["ttft"])
            except openai.RateLimitError:
                note("busy")
                time.sleep(0.2)
            except Exception as e:  # counted and shown: the soak fails on any
                note("errors")
                with lock:
                    samples.append({"error": f"{type(e).__name__}: {e}"})

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_clients)]
    for t in threads:
        t.start()
    peak = {"active": 0, "queue": 0}
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        m = metrics(url)
        peak["active"] = max(peak["active"], m.get("llamux_active_sessions", 0))
        peak["queue"] = max(peak["queue"], m.get("llamux_queue_depth", 0))
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    time.sleep(1)
    after = metrics(url)

    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None

    report = dict(stats, clients=n_clients, seconds=round(wall, 1), tokens_per_s=round(stats["tokens"] / wall, 1),
                  latency_p50_s=pct(latencies, 0.5), latency_p99_s=pct(latencies, 0.99),
                  ttft_p50_s=pct(ttfts, 0.5), ttft_p99_s=pct(ttfts, 0.99), peak_active=peak["active"],
                  peak_queue=peak["queue"], active_after=after.get("llamux_active_sessions"),
                  queue_after=after.get("llamux_queue_depth"), in_flight_after=after.get("llamux_requests_in_flight"),
                  cancelled_total=after.get("llamux_requests_cancelled_total"))
    print(json.dumps(report, indent=1))
    for s in samples[:5]:
        print("sample:", json.dumps(s), file=sys.stderr)
    idle = report["active_after"] == 0 and report["queue_after"] == 0 and report["in_flight_after"] == 0
    if stats["errors"] or stats["mismatches"] or not idle or stats["ok"] == 0:
        sys.exit("soak: FAILED")
    print("soak: passed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("check")
    a.add_argument("url")
    a.add_argument("spec")
    b = sub.add_parser("bench")
    b.add_argument("url")
    b.add_argument("--clients", default="1,8")
    b.add_argument("--tokens", type=int, default=64)
    b.add_argument("--seconds", type=float, default=20)
    s = sub.add_parser("soak")
    s.add_argument("url")
    s.add_argument("--clients", type=int, default=32)
    s.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    if args.cmd == "check":
        check(args.url, args.spec)
    elif args.cmd == "bench":
        bench(args.url, [int(x) for x in args.clients.split(",")], args.tokens, args.seconds)
    else:
        soak(args.url, args.clients, args.seconds)


if __name__ == "__main__":
    main()
