"""Property tests of symbol binding over generated worlds (ldsim.testing.binding_worlds).

Each generated world (libraries and a program defining and referencing functions and `int` objects: global,
weak, protected, unversioned and versioned, interposed, copy-relocated, missing, at versions the run-time
library no longer has) is built with gcc and run by the real loader exactly as the oracle command does,

    env -i LD_TRACE_LOADED_OBJECTS=1 LD_WARN=yes LD_BIND_NOW=yes LD_DEBUG=libs,bindings ld.so PROG

then lazily (the same without LD_BIND_NOW: PLT entries are not looked up, glibc elf/rtld.c), run for real
(without LD_TRACE_LOADED_OBJECTS and LD_WARN, with and without LD_BIND_NOW: the programs do nothing, and
an undefined symbol or a missing version is fatal), and as `ldd -r PROG`.  ldsim simulates each
in-process; stdout, stderr and the exit status must be identical once addresses and PIDs are masked
(tests/oracle.py).  The binding lines of the trace
("binding file A [0] to B [0]: normal symbol `s1' [V2]") are the bindings: which object each reference
resolved to, at which version, in what order; the `undefined symbol` and `version ... not found` warnings
are the failures.

LDSIM_BINDING_EXAMPLES sets how many worlds are generated (default 200).
"""

from __future__ import annotations

import math
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ldsim.testing import binding_worlds, build_binding_batch
from tests import oracle

pytestmark = [pytest.mark.property, pytest.mark.conformance]

WORLDS = int(os.environ.get("LDSIM_BINDING_EXAMPLES", "200"))
BATCH = 25
LAZY = {"LD_TRACE_LOADED_OBJECTS": "1", "LD_WARN": "yes", "LD_DEBUG": "libs,bindings"}
MODES = {"LD_BIND_NOW": {**LAZY, "LD_BIND_NOW": "yes"}, "lazy": LAZY,
         # the program run (it does nothing): undefined symbols and missing versions are fatal (exit 127)
         "run, LD_BIND_NOW": {"LD_BIND_NOW": "yes", "LD_DEBUG": "libs,bindings"},
         "run, lazy": {"LD_DEBUG": "libs,bindings"}}
SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)


def _diff(what: str, bw, real: oracle.Outcome, sim: oracle.Outcome) -> str:
    return f"{what} differs for world (libc={bw.libc}):\n{bw.describe()}" + "\n" + oracle.diff_report(real, sim)


def compare_world(bw, root: str) -> list[str]:
    """Every mode's difference between the real loader and ldsim for one built world (empty: identical)."""
    prog = f"{root}/bin/prog"
    diffs = []
    for mode, env in MODES.items():
        real, sim = oracle.real_ldso([prog], env, root), oracle.sim_ldso(prog, env, root)
        if real != sim:
            diffs.append(_diff(f"ld.so trace ({mode})", bw, real, sim))
    real, sim = oracle.real_ldd(["-r", prog], {}, root), oracle.sim_ldd(["-r", prog], {}, root)
    if real != sim:
        diffs.append(_diff("ldd -r", bw, real, sim))
    return diffs


@settings(max_examples=math.ceil(WORLDS / BATCH), **SETTINGS)
@given(st.lists(binding_worlds(), min_size=BATCH, max_size=BATCH))
def test_bindings_of_generated_worlds_match_the_real_loader(batch) -> None:
    """The libs,bindings trace (LD_BIND_NOW and lazy, LD_WARN) and `ldd -r` of each generated world equal
    the real loader's: same objects, same bindings in the same order, same undefined symbols and version
    errors, same status."""
    with tempfile.TemporaryDirectory(prefix="ldsim-bind-") as base:
        roots = build_binding_batch(batch, base)
        for bw, root in zip(batch, roots):
            diffs = compare_world(bw, root)
            assert not diffs, "\n\n".join(diffs)


# -- divergences found by the generated worlds, kept as reproducers -----------------------------------------

@pytest.mark.parametrize("libc", [False, True])
def test_a_none_entry_in_a_lazy_plt_range_is_fatal(tmp_path, libc) -> None:
    """A program linked with --unresolved-symbols=ignore-all gets R_X86_64_NONE entries in .rela.plt for
    the functions nothing defined at link time.  Relocated lazily (LD_WARN without LD_BIND_NOW) the real
    loader stops at the first one: elf_machine_lazy_rel (sysdeps/x86_64/dl-machine.h) accepts only
    JUMP_SLOT, TLSDESC and IRELATIVE, and _dl_reloc_bad_type(map, type, 1) is fatal ("unexpected PLT
    reloc type 0x00", exit 127); with LD_BIND_NOW, elf_machine_rela ignores R_X86_64_NONE."""
    from ldsim.materialize import LibSpec, ProgSpec, WorldSpec, build_world
    root = str(tmp_path)
    build_world(WorldSpec((ProgSpec("bin/prog", needed=("libb0.so",), rpath="$ORIGIN/../lib", uses=("absent",),
                                    libc=libc),
                           LibSpec("lib/libb0.so", soname="libb0.so", defines=("s0",), libc=libc))), root)
    prog = f"{root}/bin/prog"
    real, sim = oracle.real_ldso([prog], MODES["lazy"], root), oracle.sim_ldso(prog, MODES["lazy"], root)
    assert real == sim, f"real {real!r}\nldsim {sim!r}"
