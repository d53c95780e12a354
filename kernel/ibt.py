#!/usr/bin/env python3
"""Checks that the engine's object is fit for a kernel with indirect branch tracking (IBT).

A kernel built with CONFIG_X86_KERNEL_IBT=y faults on an indirect call or jump to an address that
does not start with `endbr64`. The C shim calls Rust functions indirectly (every call goes
through llamux_call, llamux_call.S, by pointer; the pool runs tasks through a function pointer),
and Rust calls its own functions through pointers (trait objects, closures). objtool does not
read this object (see sites.py), so this checks it instead: every function of the C ABI (the
global `llamux_*` functions), and every function whose address is taken anywhere in the object
(a relocation in code that is not a direct `call`, `jmp` or `jcc`, or one in data, unwind tables
and debug sections aside), must begin with `endbr64`. Exits 1, naming them, when one does not.
(The other global functions, compiler intrinsics such as `__rust_probestack`, are called
directly only, and any reference to one by address is caught as for every other function.)

usage: ibt.py OBJECT   (OBJECT: one relocatable ELF64 x86-64 file whose code is all in `.text`)
"""
import sys

from elf64 import R_X86_64_32S, R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32, Object

ENDBR64 = b"\xf3\x0f\x1e\xfa"
STT_FUNC, STB_GLOBAL = 2, 1


def main(path):
    obj = Object(path)
    text, syms = obj.text, obj.symbols
    # Functions in .text by their start; the section's own symbol resolves section-relative relocations.
    funcs = {v: n for n, _b, t, sh, v in syms if t == STT_FUNC and sh == text}
    need = {
        v: f"{n} (C ABI)"
        for n, b, t, sh, v in syms
        if t == STT_FUNC and sh == text and b == STB_GLOBAL and n.startswith("llamux_")
    }
    for section, r_offset, kind, sym, addend in obj.relocations():
        if section.startswith((".eh_frame", ".debug")):
            continue  # unwind and debug information: no calls through them
        if sym >= len(syms) or syms[sym][3] != text:
            continue  # not a reference into .text
        if kind in (R_X86_64_PC32, R_X86_64_PLT32) and section == ".text":
            if obj.branch_at(r_offset) is not None:
                continue  # a direct call, jump or conditional jump: no ENDBR needed
            target = syms[sym][4] + addend + 4  # rel32 at the end of its instruction (lea)
        elif kind in (R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_64, R_X86_64_32S):
            target = syms[sym][4] + addend  # a pointer (absolute or relative) in data
        else:
            continue
        if target in funcs:
            need.setdefault(target, f"{funcs[target]} (address taken)")
    missing = sorted(what for at, what in need.items() if obj.text_bytes[at:at + 4] != ENDBR64)
    if missing:
        print(f"ibt.py: {len(missing)} of {len(need)} functions that may be called indirectly "
              f"do not start with endbr64:", file=sys.stderr)
        for m in missing[:20]:
            print(f"  {m}", file=sys.stderr)
        sys.exit(1)
    print(f"ibt.py: all {len(need)} functions that may be called indirectly start with endbr64", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
