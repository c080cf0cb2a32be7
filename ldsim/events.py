"""The trace is data: typed events appended by the engine in the order the loader would produce them.

Renderers (ldsim.render.*) turn them into LD_DEBUG text, ldd listings, explanations or JSON.
Named tuples (ldsim.record.NamedTuple, without importing typing), not dataclasses: 22 frozen dataclasses
cost ~25 ms of every cold start, these ~2 ms.
Each event names the LD_DEBUG category whose bit makes ld.so print it; `category=0` means always printed.
"""

from __future__ import annotations

from ldsim.config import Debug
from ldsim.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union


class FileNeeded(NamedTuple):
    """`file=NAME [0];  needed by REQ [0]` (also dlopen and relocation dependencies)."""

    name: str
    requester: str
    how: str = "needed"  # "needed" | "dlopen"
    category = Debug.FILES


class FindLibrary(NamedTuple):
    name: str
    category = Debug.LIBS


class SearchPath(NamedTuple):
    """One ` search path=` line: the directories of one run of records sharing a label."""

    dirs: tuple[str, ...]
    what: str
    where: str | None
    category = Debug.LIBS


class TryFile(NamedTuple):
    path: str
    category = Debug.LIBS


class SearchCache(NamedTuple):
    cache_file: str
    category = Debug.LIBS


class SearchDone(NamedTuple):
    category = Debug.LIBS


class LoadAuxiliary(NamedTuple):
    name: str
    requester: str
    category = Debug.LIBS


class EmptyDstAuxiliary(NamedTuple):
    name: str
    category = Debug.LIBS


class GeneratingLinkMap(NamedTuple):
    """The "file=NAME [0];  generating link map" line: printed before the file is mapped, so a mapping error
    (an executable, a PIE, no dynamic section ...) follows it without the MappedObject lines."""

    name: str
    category = Debug.FILES


class MappedObject(NamedTuple):
    """The "  dynamic: ... phnum:" lines, printed at the end of _dl_map_object_from_fd: after every
    check and after elf_get_dynamic_info's DT_FLAGS_1 warning."""

    dynamic: int
    base: int
    size: int
    entry: int
    phdr: int
    phnum: int
    digits: int = 16  # sizeof (void *) * 2: the loader's field widths (8 for a 32-bit one)
    category = Debug.FILES


class UnsupportedFlags1(NamedTuple):
    bits: int
    category = Debug.FILES


class CheckingVersion(NamedTuple):
    version: str
    definer: str
    requester: str
    category = Debug.VERSIONS


class DebugError(NamedTuple):
    """`OBJ: error: OCCASION: MESSAGE (continued|fatal)`: printed under any category but statistics."""

    objname: str
    occasion: str
    message: str
    continued: bool
    category = ~Debug.STATISTICS & 0x3FF


class Output(NamedTuple):
    """Text the loader writes outside LD_DEBUG: the listing (stdout) or error messages (stderr)."""

    text: str
    stream: int = 1  # 1 stdout, 2 stderr
    category = 0


class Listing(NamedTuple):
    """Where the trace-mode listing of loaded objects is written to stdout."""

    category = 0


class VersionInformation(NamedTuple):
    """Where LD_VERBOSE's "Version information" is written to stdout: in trace mode only (not --list),
    after the listing and after LD_WARN's relocation pass (end of dl_main, elf/rtld.c)."""

    category = 0


if TYPE_CHECKING:
    Event = Union[Listing, VersionInformation, FileNeeded, FindLibrary, SearchPath, TryFile, SearchCache,
                  SearchDone, LoadAuxiliary, EmptyDstAuxiliary, GeneratingLinkMap, MappedObject,
                  UnsupportedFlags1,
                  CheckingVersion, DebugError, Output]


# -- symbol binding, relocation, init and fini (ldsim.relocate, ldsim.initfini) ----------------------


class SymbolLookup(NamedTuple):
    """`symbol=NAME;  lookup in file=OBJ [0]`: one object visited by do_lookup_x."""

    name: str
    file: str
    category = Debug.SYMBOLS


class Binding(NamedTuple):
    """`binding file REF [0] to DEF [0]: normal|protected symbol `NAME'[ [VERSION]]`."""

    ref: str
    definer: str
    name: str
    version: str | None
    protected: bool = False
    category = Debug.BINDINGS


class RelocationProcessing(NamedTuple):
    name: str
    lazy: bool
    category = Debug.RELOC


class CallingInit(NamedTuple):
    name: str
    preinit: bool = False
    category = Debug.IMPCALLS


class CallingFini(NamedTuple):
    name: str  # raw l_name: "" for the main program
    category = Debug.IMPCALLS


class ProgramStart(NamedTuple):
    """libc's `initialize program: ARGV0` (transfer=False) and `transferring control: ARGV0`."""

    argv0: str
    transfer: bool
    category = Debug.IMPCALLS


class ObjectScopes(NamedTuple):
    """One object of the `Initial object scopes` dump; scopes None = `no scope`; first=True adds the title."""

    name: str
    scopes: tuple[tuple[str, ...], ...] | None
    first: bool = False
    category = Debug.SCOPES


class Statistics(NamedTuple):
    """`runtime linker statistics:` at startup (final=False) or at the end of _dl_fini (final=True).
    Cycle counts are not reproducible: the renderer prints fixed ones."""

    relocations: int
    cache: int
    relative: int = 0
    final: bool = False
    category = Debug.STATISTICS


if TYPE_CHECKING:
    Event = Union[Event, SymbolLookup, Binding, RelocationProcessing, CallingInit, CallingFini, ProgramStart,  # type: ignore[misc]
                  ObjectScopes, Statistics]
