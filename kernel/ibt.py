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
import struct
import sys

ENDBR64 = b"\xf3\x0f\x1e\xfa"
R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_32S = 1, 2, 4, 11
STT_FUNC, STB_GLOBAL, SHN_UNDEF = 2, 1, 0
JMP32, CALL32 = 0xE9, 0xE8


def main(path):
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit(f"{path}: not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]

    def name(strtab, off):
        base = strtab[4] + off
        return data[base:data.index(b"\0", base)].decode()

    names = [name(secs[shstrndx], s[0]) for s in secs]
    text = names.index(".text")
    text_bytes = data[secs[text][4]:secs[text][4] + secs[text][5]]
    symtab = next(s for s in secs if s[1] == 2)  # SHT_SYMTAB
    strtab = secs[symtab[6]]
    syms = []
    for off in range(symtab[4], symtab[4] + symtab[5], 24):
        st_name, info, _other, shndx, value, _size = struct.unpack_from("<IBBHQQ", data, off)
        syms.append((name(strtab, st_name), info >> 4, info & 15, shndx, value))
    # Functions in .text by their start; the section's own symbol resolves section-relative relocations.
    funcs = {v: n for n, _b, t, sh, v in syms if t == STT_FUNC and sh == text}
    need = {
        v: f"{n} (C ABI)"
        for n, b, t, sh, v in syms
        if t == STT_FUNC and sh == text and b == STB_GLOBAL and n.startswith("llamux_")
    }
    for s in secs:
        if s[1] != 4:  # SHT_RELA
            continue
        if names[s[7]].startswith((".eh_frame", ".debug")):
            continue  # unwind and debug information: no calls through them
        applies_to_text = s[7] == text
        for off in range(s[4], s[4] + s[5], 24):
            r_offset, r_info, addend = struct.unpack_from("<QQq", data, off)
            kind, sym = r_info & 0xFFFFFFFF, r_info >> 32
            if sym >= len(syms) or syms[sym][3] != text:
                continue  # not a reference into .text
            if kind in (R_X86_64_PC32, R_X86_64_PLT32) and applies_to_text:
                if r_offset >= 1 and text_bytes[r_offset - 1] in (JMP32, CALL32):
                    continue  # a direct call or jump: no ENDBR needed
                if r_offset >= 2 and text_bytes[r_offset - 2] == 0x0F and 0x80 <= text_bytes[r_offset - 1] <= 0x8F:
                    continue  # a direct conditional jump
                target = syms[sym][4] + addend + 4  # rel32 at the end of its instruction (lea)
            elif kind in (R_X86_64_PC32, R_X86_64_PLT32):
                target = syms[sym][4] + addend  # a relative pointer in data
            elif kind in (R_X86_64_64, R_X86_64_32S):
                target = syms[sym][4] + addend
            else:
                continue
            if target in funcs:
                need.setdefault(target, f"{funcs[target]} (address taken)")
    missing = sorted(what for at, what in need.items() if text_bytes[at:at + 4] != ENDBR64)
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
