"""A tiny ELF writer: the smallest files the loader (and `ldsim.elf`) accept as shared objects or programs.

One PT_LOAD maps the whole file at address 0 (page aligned, so `_dl_map_object_from_fd` has nothing to
object to), PT_DYNAMIC points at the dynamic array, PT_INTERP names the loader for programs.  The dynamic
section carries what the search rules read: DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH, DT_FLAGS_1, plus
DT_STRTAB/DT_STRSZ/DT_SYMTAB/DT_SYMENT/DT_HASH with one global function symbol per defined name.
Used by `ldsim.virtual` (scenario and hypothesis worlds); never by the resolver.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ldsim.elf import DT, EIClass, EMachine, EType, PT
from ldsim.elf import elf_hash  # noqa: F401  (the SysV hash, re-exported)

PAGE = 0x1000
DF_1_PIE = 0x08000000


@dataclass(frozen=True)
class ElfSpec:
    """What to write.  `interp` set (or `program`) makes an executable (ET_DYN with DF_1_PIE)."""

    needed: tuple[str, ...] = ()
    soname: str | None = None
    rpath: str | None = None
    runpath: str | None = None
    flags_1: int = 0
    symbols: tuple[str, ...] = ()
    program: bool = False
    interp: str | None = None
    ei_class: int = EIClass.ELF64
    machine: int | None = None  # default: x86-64 for ELF64, i386 for ELF32




class _Strtab:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self.index: dict[str, int] = {}

    def add(self, s: str) -> int:
        if s not in self.index:
            self.index[s] = len(self.data)
            self.data += s.encode("utf-8", "surrogateescape") + b"\0"
        return self.index[s]


def _align(n: int, a: int = 8) -> int:
    return (n + a - 1) & ~(a - 1)


def write_elf(spec: ElfSpec) -> bytes:
    is64 = spec.ei_class == EIClass.ELF64
    machine = spec.machine if spec.machine is not None else (EMachine.X86_64 if is64 else 3)
    ehsize, phentsize = (64, 56) if is64 else (52, 32)
    symsize, dynsize = (24, 16) if is64 else (16, 8)
    interp = spec.interp if spec.interp is not None else (
        "/lib64/ld-linux-x86-64.so.2" if spec.program else None)
    phnum = 3 + (interp is not None)  # PHDR-less: LOAD, DYNAMIC, (INTERP), GNU_STACK
    strtab = _Strtab()
    dyn: list[tuple[int, int]] = [(DT.NEEDED, strtab.add(n)) for n in spec.needed]
    if spec.soname is not None:
        dyn.append((DT.SONAME, strtab.add(spec.soname)))
    if spec.rpath is not None:
        dyn.append((DT.RPATH, strtab.add(spec.rpath)))
    if spec.runpath is not None:
        dyn.append((DT.RUNPATH, strtab.add(spec.runpath)))
    names = [strtab.add(s) for s in spec.symbols]
    flags_1 = spec.flags_1 | (DF_1_PIE if spec.program else 0)
    # layout: ehdr, phdrs, interp, strtab, symtab, hash, dynamic
    off = ehsize + phnum * phentsize
    interp_off = off
    if interp is not None:
        off += len(interp) + 1
    str_off = off
    off = _align(off + len(strtab.data))
    sym_off = off
    nsyms = 1 + len(names)
    off += nsyms * symsize
    hash_off = off
    nbucket = 1
    off += 4 * (2 + nbucket + nsyms)
    dyn_off = off = _align(off)
    tail = [(DT.STRTAB, str_off), (DT.STRSZ, len(strtab.data)), (DT.SYMTAB, sym_off),
            (DT.SYMENT, symsize), (DT.HASH, hash_off)]
    if flags_1:
        tail.append((DT.FLAGS_1, flags_1))
    entries = dyn + tail + [(DT.NULL, 0)]
    size = dyn_off + len(entries) * dynsize
    out = bytearray(size)
    ident = b"\x7fELF" + bytes([spec.ei_class, 1, 1, 0, 0]) + bytes(7)
    e_type = EType.DYN
    if is64:
        struct.pack_into("<16sHHIQQQIHHHHHH", out, 0, ident, e_type, machine, 1, 0, ehsize, 0, 0, ehsize,
                         phentsize, phnum, 64, 0, 0)
    else:
        struct.pack_into("<16sHHIIIIIHHHHHH", out, 0, ident, e_type, machine, 1, 0, ehsize, 0, 0, ehsize,
                         phentsize, phnum, 40, 0, 0)
    phdrs = [(PT.LOAD, 7, 0, 0, size, size, PAGE), (PT.DYNAMIC, 6, dyn_off, dyn_off, len(entries) * dynsize,
                                                      len(entries) * dynsize, 8)]
    if interp is not None:
        phdrs.insert(0, (PT.INTERP, 4, interp_off, interp_off, len(interp) + 1, len(interp) + 1, 1))
        out[interp_off:interp_off + len(interp)] = interp.encode()
    phdrs.append((0x6474E551, 6, 0, 0, 0, 0, 16))  # PT_GNU_STACK, non-executable
    for i, (typ, flags, o, va, fs, ms, al) in enumerate(phdrs):
        at = ehsize + i * phentsize
        if is64:
            struct.pack_into("<IIQQQQQQ", out, at, typ, flags, o, va, va, fs, ms, al)
        else:
            struct.pack_into("<IIIIIIII", out, at, typ, o, va, va, fs, ms, flags, al)
    out[str_off:str_off + len(strtab.data)] = strtab.data
    for i, name in enumerate(names, 1):
        at = sym_off + i * symsize
        info = (1 << 4) | 2  # STB_GLOBAL, STT_FUNC
        if is64:
            struct.pack_into("<IBBHQQ", out, at, name, info, 0, 1, dyn_off, 0)
        else:
            struct.pack_into("<IIIBBH", out, at, name, dyn_off, 0, info, 0, 1)
    # SysV hash: one bucket chaining every symbol
    chain = [0] * nsyms
    for i in range(1, nsyms - 1):
        chain[i] = i + 1
    struct.pack_into(f"<{2 + nbucket + nsyms}I", out, hash_off, nbucket, nsyms, 1 if nsyms > 1 else 0, *chain)
    fmt = "<qQ" if is64 else "<iI"
    for i, (tag, val) in enumerate(entries):
        struct.pack_into(fmt, out, dyn_off + i * dynsize, tag, val)
    return bytes(out)
