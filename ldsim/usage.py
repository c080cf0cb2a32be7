"""`ld.so --help`: the usage text, the library search path and the hwcaps subdirectories of the simulated
loader and CPU.  Mirrors `_dl_help` and its helpers (elf/dl-usage.c).  Pure: lines from records."""

from __future__ import annotations

from collections.abc import Sequence

from ldsim.glibc import Profile
from ldsim.hwcaps import Cpu, HwcapsChoice, supported_subdirs


def _usage_head(argv0: str, profile: Profile) -> str:
    return f"""Usage: {argv0} [OPTION]... EXECUTABLE-FILE [ARGS-FOR-PROGRAM...]
You have invoked 'ld.so', the program interpreter for dynamically-linked
ELF programs.  Usually, the program interpreter is invoked automatically
when a dynamically-linked executable is started.

You may invoke the program interpreter program directly from the command
line to load and run an ELF executable file; this is like executing that
file itself, but always uses the program interpreter you invoked,
instead of the program interpreter specified in the executable file you
run.  Invoking the program interpreter directly provides access to
additional diagnostics, and changing the dynamic linker behavior without
setting environment variables (which would be inherited by subprocesses).

  --list                list all dependencies and how they are resolved
  --verify              verify that given object really is a dynamically linked
                        object we can handle
  --inhibit-cache       Do not use {profile.cache_file}
  --library-path PATH   use given PATH instead of content of the environment
                        variable LD_LIBRARY_PATH
  --glibc-hwcaps-prepend LIST
                        search glibc-hwcaps subdirectories in LIST
  --glibc-hwcaps-mask LIST
                        only search built-in subdirectories if in LIST
  --inhibit-rpath LIST  ignore RUNPATH and RPATH information in object names
                        in LIST
  --audit LIST          use objects named in LIST as auditors
  --preload LIST        preload objects named in LIST
  --argv0 STRING        set argv[0] to STRING before running
  --list-tunables       list all tunables with minimum and maximum values
  --list-diagnostics    list diagnostics information
  --help                display this help and exit
  --version             output version information and exit

This program interpreter self-identifies as: {profile.rtld}
"""


def _path_lines(records: Sequence) -> list[str]:
    """print_search_path_for_help_1: each record's dirname without its trailing '/' ("." when empty),
    labelled with the `what` of the list that created the record."""
    out = []
    for rec in records:
        name = rec.dirname
        if name == "":
            name = "."
        elif len(name) > 1:
            name = name[:-1]
        out.append(f"  {name} ({rec.what})\n")
    return out


def _flags(pairs: Sequence[tuple[bool, str]]) -> str:
    """print_hwcap_1 / print_hwcap_1_finish: the set flags in parentheses, or nothing."""
    on = [label for active, label in pairs if active]
    return f" ({', '.join(on)})\n" if on else "\n"


def hwcaps_lines(profile: Profile, cpu: Cpu, choice: HwcapsChoice) -> list[str]:
    """print_hwcaps_subdirectories: prepended names, then every built-in name with its flags."""
    out: list[str] = []
    supported = set(supported_subdirs(profile, cpu))
    for name in choice.prepend:
        out.append(f"  {name}{_flags([(True, 'searched')])}")
    for name in profile.hwcaps_subdirs:
        listed = choice.mask is None or name in choice.mask
        sup = name in supported
        out.append(f"  {name}{_flags([(sup, 'supported'), (not listed, 'masked'), (sup and listed, 'searched')])}")
    if not out:
        return ["\nNo subdirectories of glibc-hwcaps directories are searched.\n"]
    return ["\nSubdirectories of glibc-hwcaps directories, in priority order:\n", *out]


def legacy_lines(profile: Profile, cpu: Cpu, choice: HwcapsChoice) -> list[str]:
    """print_legacy_hwcap_directories: AT_PLATFORM, tls, then the HWCAP_IMPORTANT bits, high bit first."""
    out = ["\nLegacy HWCAP subdirectories under library search path directories:\n"]
    if cpu.platform is not None:
        out.append(f"  {cpu.platform} (AT_PLATFORM; supported, searched)\n")
    out.append("  tls (supported, searched)\n")
    mask = profile.hwcap_important if choice.hwcap_mask is None else choice.hwcap_mask
    searched = cpu.hwcap & mask
    for n in range(63, -1, -1):
        bit = 1 << n
        if profile.hwcap_important & bit:
            name = profile.hwcap_names[n] if n < len(profile.hwcap_names) else str(n)
            out.append(f"  {name}{_flags([(bool(cpu.hwcap & bit), 'supported'), (not mask & bit, 'masked'), (bool(searched & bit), 'searched')])}")
    return out


def help_text(argv0: str, profile: Profile, cpu: Cpu, choice: HwcapsChoice,
              search_lists: Sequence[Sequence]) -> str:
    """_dl_help.  `search_lists`: the main program's RPATH records, LD_LIBRARY_PATH's, the main program's
    RUNPATH records (empty lists where absent), then the system directories; the cache line goes
    before the system directories."""
    *before, system = search_lists
    lines = [_usage_head(argv0, profile), "\nShared library search path:\n"]
    for records in before:
        lines += _path_lines(records)
    lines.append(f"  (libraries located via {profile.cache_file})\n")
    lines += _path_lines(system)
    lines += hwcaps_lines(profile, cpu, choice)
    lines += legacy_lines(profile, cpu, choice)
    return "".join(lines)
