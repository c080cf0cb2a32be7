"""Differential tests of what ld.so does when the kernel refuses its mappings (mm/mmap.c, mm/util.c):

- _dl_map_segments (elf/dl-map-segments.h): a span past the 47-bit address space is "failed to map
  segment from shared object", zero-filled pages the kernel will not grant "cannot map zero-fill pages",
  for a library and for the program under `ld.so PROG`; the kernel's own exec of such a program dies of
  SIGSEGV before ld.so runs;
- the initial thread's static TLS block (glibc 2.36 init_tls, elf/rtld.c): after the version checks and
  before any relocation, in trace mode too, ld.so lays out every startup object's PT_TLS block plus the
  surplus (_dl_determine_tlsoffset, _dl_tls_static_surplus_init, elf/dl-tls.c) and maps it with one
  anonymous mmap (_dl_allocate_tls_storage, __minimal_malloc): "cannot allocate TLS data structures for
  initial thread", exit 127, when refused; a PT_TLS whose p_align is 0 makes roundup divide by zero:
  SIGFPE.

Each world runs for real (executed by the kernel, as `ld.so PROG`, traced, through ldd) and by ldsim.
Sizes are chosen so that the real mapping always fails (past the address space, or the size_t wrap of an
optional_static_tls past INT_MAX), or only where the machine's overcommit policy refuses it: a TLS block
that were mapped would be filled with zeros."""

from __future__ import annotations

import os
import struct
import subprocess

import pytest

from ldsim.elf import PT
from ldsim.vm import OVERCOMMIT_GUESS, read_host_memory
from tests import oracle
from tests.conformance.conftest import assert_same

pytestmark = pytest.mark.conformance

HUGE = 1 << 47  # above x86-64's DEFAULT_MAP_WINDOW: no overcommit setting maps it
PROG = "void *gt(void); void *p = gt; int main(void) { return 0; }\n"
# how each world is run: (kind, env); `run` executes it, `ldso` is `ld.so PROG`, `ldd` the real script
MODES = {
    "run": ("run", {}),
    "run-debug": ("run", {"LD_DEBUG": "all", "LD_BIND_NOW": "1"}),
    "ldso-debug": ("ldso", {"LD_DEBUG": "files,versions,scopes"}),
    "trace": ("ldso", {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_BIND_NOW": "yes",
                       "LD_DEBUG": "all"}),
    "ldd": ("ldd", {}),
}


def _cc(root: str, out: str, src: str, *flags: str) -> None:
    path = os.path.join(root, out + ".c")
    with open(path, "w") as f:
        f.write(src)
    argv = ["gcc", "-fPIC", "-o", os.path.join(root, out), path, *flags, f"-L{root}", f"-Wl,-rpath,{root}"]
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"{' '.join(argv)}\n{p.stderr}")


def _lib_world(root: str, tls_bytes: int) -> str:
    """libt.so with a TLS block of `tls_bytes`, and a program `m` needing it."""
    _cc(root, "libt.so", f"__thread char t[{tls_bytes}UL]; void *gt(void) {{ return t; }}\n",
        "-shared", "-Wl,-soname,libt.so")
    _cc(root, "m", PROG, "-lt")
    return f"{root}/m"


def _program_world(root: str, tls_bytes: int) -> str:
    """A program `m` whose own TLS block is `tls_bytes` (general-dynamic: no 32-bit offset to fit)."""
    _cc(root, "m", f"__thread char t[{tls_bytes}UL];\nvoid *gt(void) {{ return t; }}\n"
                   "int main(void) { return 0; }\n", "-ftls-model=global-dynamic")
    return f"{root}/m"


def patch_tls_field(path: str, field: int, value) -> None:
    """Rewrite one 8-byte field of the file's PT_TLS program header (ELF64): `field` is its offset in
    the header (32 p_filesz, 40 p_memsz, 48 p_align), `value` maps the (p_filesz, p_memsz) pair to the
    new value."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        at = phoff + i * phentsize
        if struct.unpack_from("<I", data, at)[0] == PT.TLS:
            struct.pack_into("<Q", data, at + field, value(*struct.unpack_from("<QQ", data, at + 32)))
    with open(path, "wb") as f:
        f.write(data)


def _zero_tls_align(path: str) -> None:
    """Set p_align of the file's PT_TLS to 0."""
    patch_tls_field(path, 48, lambda filesz, memsz: 0)


def _compare(prog: str, mode: str, root: str, extra: dict[str, str] | None = None) -> None:
    kind, env = MODES[mode]
    env = {**env, **(extra or {})}
    if kind == "run":
        assert_same(oracle.run([prog], env, root), oracle.ldsim_run(prog, env, root))
    elif kind == "ldso":
        assert_same(oracle.real_ldso([prog], env, root), oracle.ldsim_ldso([prog], env, root))
    else:
        assert_same(oracle.real_ldd([prog], env, root), oracle.ldsim_ldd([prog], env, root))


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("where", ["library", "program"])
def test_a_tls_block_past_the_address_space(tmp_path, where: str, mode: str) -> None:
    """A 128 TiB TLS block: mmap fails whatever the memory, so init_tls is fatal (ldsim went on)."""
    root = str(tmp_path)
    prog = (_lib_world if where == "library" else _program_world)(root, HUGE)
    _compare(prog, mode, root)


@pytest.mark.parametrize("mode", ["run", "run-debug", "trace"])
@pytest.mark.parametrize("value", ["0x7fffffff", "0x80000000", "0xffffffff", "0x100000000000"])
def test_optional_static_tls_is_summed_as_an_int(tmp_path, value: str, mode: str) -> None:
    """glibc.rtld.optional_static_tls goes through tls_static_surplus's int arithmetic: 0x7fffffff
    overflows it, 0x80000000 is negative, both a surplus near 2^64 (fatal); 0xffffffff (-1) and
    0x100000000000 (0) shrink it (ldsim ignored the tunable)."""
    root = str(tmp_path)
    prog = _lib_world(root, 64)
    _compare(prog, mode, root, {"GLIBC_TUNABLES": f"glibc.rtld.nns=16:glibc.rtld.optional_static_tls={value}"})


@pytest.mark.parametrize("mode", ["run", "run-debug", "trace", "ldd"])
@pytest.mark.parametrize("where", ["library", "program"])
def test_a_tls_alignment_of_zero_divides_by_zero(tmp_path, where: str, mode: str) -> None:
    """_dl_determine_tlsoffset rounds each block up to its l_tls_align with a division: p_align 0 is
    SIGFPE, for a library as for the program (ldsim went on)."""
    root = str(tmp_path)
    prog = (_lib_world if where == "library" else _program_world)(root, 4)
    _zero_tls_align(f"{root}/libt.so" if where == "library" else prog)
    _compare(prog, mode, root)


def test_a_tls_block_larger_than_ram_and_swap(tmp_path) -> None:
    """The heuristic overcommit (vm.overcommit_memory 0) refuses one mapping of more pages than RAM plus
    swap: a 1 TiB block below the address-space limit.  Only on such a machine, where the real mapping
    is sure to fail."""
    memory = read_host_memory()
    size = 1 << 40
    if memory is None or memory.overcommit != OVERCOMMIT_GUESS or memory.ram_swap_pages * 4096 >= size // 2:
        pytest.skip("the real mapping of 1 TiB might succeed here")
    root = str(tmp_path)
    prog = _lib_world(root, size)
    _compare(prog, "run", root)
    _compare(prog, "trace", root)


def test_the_static_tls_layout_is_the_loaders(tmp_path) -> None:
    """ldsim's layout (ldsim.tls.static_size) against what the real loader computed, as
    _dl_get_tls_static_info reports it to a program: blocks of odd sizes and alignments leave gaps that
    later blocks fill (_dl_determine_tlsoffset's freetop/freebottom), the optional surplus set by the
    tunables."""
    from ldsim.elf import EIClass, parse_elf
    from ldsim.tls import _TCB_SIZE, EMachine, static_size, static_surplus, tls_block
    from ldsim.tunables import read_tunables
    root = str(tmp_path)
    libs = {"ta": (3, 256), "tb": (200, 8), "tc": (40, 64), "td": (1, 1), "te": (500, 4096)}
    for name, (size, align) in libs.items():
        _cc(root, f"lib{name}.so", f"__thread char v{name}[{size}] __attribute__((aligned({align})));\n"
                                   f"void *g{name}(void) {{ return v{name}; }}\n", "-shared", f"-Wl,-soname,lib{name}.so")
    _cc(root, "m", "#include <stdio.h>\n#include <stddef.h>\n"
                   "extern void _dl_get_tls_static_info(size_t *, size_t *);\n"
                   "__thread char mine[24] __attribute__((aligned(32)));\n"
                   + "".join(f"void *g{n}(void);\n" for n in libs)
                   + "void *p[] = {" + ", ".join(f"g{n}" for n in libs) + "};\n"
                   "int main(void) { size_t s, a; _dl_get_tls_static_info(&s, &a); printf(\"%zu %zu\\n\", s, a);"
                   " return mine[0]; }\n", *(f"-l{n}" for n in libs), oracle.RTLD)
    libc = "/lib/x86_64-linux-gnu/libc.so.6"
    chain = [f"{root}/m", *(f"{root}/lib{n}.so" for n in libs), libc]  # no library needs another
    blocks = []
    for path in chain:
        with open(path, "rb") as f:
            block = tls_block(parse_elf(f.read()))
        if block is not None:
            blocks.append(block)
    for tunables in ("", "glibc.rtld.nns=7:glibc.rtld.optional_static_tls=1000"):
        env = {"GLIBC_TUNABLES": tunables} if tunables else {}
        real = subprocess.run([f"{root}/m"], env=env, capture_output=True, text=True, check=True).stdout.split()
        m = 1 << 64
        sim = static_size(blocks, static_surplus(read_tunables(tuple(env.items()), False), m),
                          _TCB_SIZE[(EIClass.ELF64, EMachine.X86_64)], m)
        assert sim == (int(real[0]), int(real[1])), (tunables, real, sim)


def _bss_lib_world(root: str, bss: int, *flags: str) -> str:
    """libb.so with `bss` zero-filled bytes (linked with `flags`), and a PIE `m` needing it."""
    _cc(root, "libb.so", f"char big[{bss}UL];\nvoid *gt(void) {{ return big; }}\n", "-shared",
        "-Wl,-soname,libb.so", *flags)
    _cc(root, "m", PROG, "-lb")
    return f"{root}/m"


def _bss_program(root: str, bss: int, *flags: str) -> str:
    """A program `m` with `bss` zero-filled bytes of its own."""
    _cc(root, "m", f"char big[{bss}UL];\nint main(void) {{ return big[0]; }}\n", *flags)
    return f"{root}/m"


SEGMENT_WORLDS = {
    "library": lambda root: _bss_lib_world(root, HUGE),  # its span reserved with its first segment
    # p_align 2 MiB: the span is reserved by an inaccessible anonymous mapping first
    "library-2m-aligned": lambda root: _bss_lib_world(root, HUGE, "-Wl,-z,max-page-size=0x200000"),
    "pie": lambda root: _bss_program(root, HUGE),
    # ET_EXEC, each segment at its address: its file part fits, its zero-fill past the top does not
    "exec": lambda root: _bss_program(root, HUGE, "-no-pie", "-mcmodel=large"),
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("world", list(SEGMENT_WORLDS))
def test_segments_past_the_address_space(tmp_path, world: str, mode: str) -> None:
    """A 128 TiB .bss: _dl_map_segments fails, whatever the memory, and the error is fatal even when
    tracing; the kernel cannot exec such a program (ldsim mapped it and went on)."""
    root = str(tmp_path)
    prog = SEGMENT_WORLDS[world](root)
    _compare(prog, mode, root)


def test_zero_fill_larger_than_ram_and_swap(tmp_path) -> None:
    """The heuristic overcommit refuses the 1 TiB of zero-filled pages of a library's .bss, and of the
    program's: "cannot map zero-fill pages" (ld.so PROG), SIGSEGV (exec).  Only on such a machine."""
    memory = read_host_memory()
    size = 1 << 40
    if memory is None or memory.overcommit != OVERCOMMIT_GUESS or memory.ram_swap_pages * 4096 >= size // 2:
        pytest.skip("the real mapping of 1 TiB might succeed here")
    for world in (_bss_lib_world, _bss_program):
        root = str(tmp_path / world.__name__)
        os.makedirs(root)
        prog = world(root, size)
        for mode in ("run", "ldso-debug", "trace"):
            _compare(prog, mode, root)
