"""A small reader of relocatable ELF64 x86-64 objects: what sites.py and ibt.py need of the
engine's object (its sections, its symbols, the relocations of a section) and one place that
knows the instruction a `rel32` relocation sits in."""
import struct
import sys

SHT_SYMTAB, SHT_RELA = 2, 4
R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_32S = 1, 2, 4, 11
JMP32, CALL32 = 0xE9, 0xE8


class Object:
    """One relocatable ELF64 file whose code is all in `.text`."""

    def __init__(self, path):
        data = open(path, "rb").read()
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            sys.exit(f"{path}: not a little-endian ELF64 file")
        self.path, self.data = path, data
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        # Section headers: (name, type, flags, addr, offset, size, link, info, align, entsize).
        self.sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        self.names = [self._string(self.sections[shstrndx], s[0]) for s in self.sections]
        if ".text" not in self.names:
            sys.exit(f"{path}: no .text section")
        self.text = self.names.index(".text")
        t = self.sections[self.text]
        self.text_bytes = data[t[4]:t[4] + t[5]]
        symtab = next((s for s in self.sections if s[1] == SHT_SYMTAB), None)
        if symtab is None:
            sys.exit(f"{path}: no symbol table")
        strtab = self.sections[symtab[6]]
        # Symbols: (name, binding, type, section index, value).
        self.symbols = []
        for off in range(symtab[4], symtab[4] + symtab[5], 24):
            st_name, info, _other, shndx, value, _size = struct.unpack_from("<IBBHQQ", data, off)
            self.symbols.append((self._string(strtab, st_name), info >> 4, info & 15, shndx, value))

    def _string(self, strtab, off):
        base = strtab[4] + off
        return self.data[base:self.data.index(b"\0", base)].decode()

    def relocations(self):
        """(name of the section they apply to, r_offset, kind, symbol index, addend) of every
        SHT_RELA section."""
        for s in self.sections:
            if s[1] != SHT_RELA:
                continue
            target = self.names[s[7]]
            for off in range(s[4], s[4] + s[5], 24):
                r_offset, r_info, addend = struct.unpack_from("<QQq", self.data, off)
                yield target, r_offset, r_info & 0xFFFFFFFF, r_info >> 32, addend

    def branch_at(self, r_offset):
        """The start in `.text` of the direct `jmp`/`call rel32` or `jcc rel32` whose operand is
        at `r_offset`, or None when the rel32 there belongs to another instruction."""
        b = self.text_bytes
        if r_offset >= 1 and b[r_offset - 1] in (JMP32, CALL32):
            return r_offset - 1
        if r_offset >= 2 and b[r_offset - 2] == 0x0F and 0x80 <= b[r_offset - 1] <= 0x8F:
            return r_offset - 2
        return None
