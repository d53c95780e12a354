#!/usr/bin/env python3
"""Records llama.cpp's built-in chat formatting (`llama_chat_apply_template`) for a sample
conversation in each template llamux implements, as a fixture for tests/chat_templates.rs.

usage: chat_templates.py OUT.json     (needs llama-cpp-python: `cargo xtask oracle`)
"""
import ctypes
import json
import sys

import llama_cpp

MESSAGES = [
    ("system", "You are terse."),
    ("user", "Hi there"),
    ("assistant", "Hello."),
    ("user", "Name a color."),
]
TEMPLATES = ["chatml", "gemma", "llama3", "llama2", "phi3"]


def apply(tmpl: str, msgs, add_ass: bool) -> str:
    arr = (llama_cpp.llama_chat_message * len(msgs))()
    keep = []
    for i, (role, content) in enumerate(msgs):
        r, c = role.encode(), content.encode()
        keep += [r, c]
        arr[i].role = r
        arr[i].content = c
    buf = ctypes.create_string_buffer(8192)
    n = llama_cpp.llama_chat_apply_template(tmpl.encode(), arr, len(msgs), add_ass, buf, len(buf))
    assert n > 0, (tmpl, n)
    return buf.raw[:n].decode()


def main() -> int:
    out = {"messages": MESSAGES, "templates": {}}
    for t in TEMPLATES:
        out["templates"][t] = {
            "with_system": apply(t, MESSAGES, True),
            "no_system": apply(t, MESSAGES[1:], True),
        }
    json.dump(out, open(sys.argv[1], "w"), indent=1, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
