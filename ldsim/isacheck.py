"""The x86 ISA level check after all startup objects are loaded: `dl_isa_level_check`
(sysdeps/x86/dl-prop.h), called by `_rtld_main_check` just before relocation.  Not a search criterion
in 2.36: a library marked for a higher level is found and mapped, then the process dies."""

from __future__ import annotations

from collections.abc import Sequence

from ldsim.linkmap import LinkMap


def isa_level_failure(initfini: Sequence[LinkMap], cpu_isa: int, rtld: LinkMap | None,
                      program: str) -> str | None:
    """The fatal message for the first object, walking l_initfini backwards (dependencies first), whose
    GNU_PROPERTY_X86_ISA_1_NEEDED bits the CPU lacks; ld.so itself is exempt.  None when all fit."""
    for m in reversed(initfini):
        if m is rtld or m.faked or m.elf is None:
            continue
        need = m.elf.isa_needed
        if need & cpu_isa != need:
            return f"{m.name or program}: CPU ISA level is lower than required\n"
    return None
