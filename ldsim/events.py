"""The trace is data: typed events appended by the engine in the order the loader would produce them.

Renderers (ldsim.render.*) turn them into LD_DEBUG text, ldd listings, explanations or JSON.
Each event names the LD_DEBUG category whose bit makes ld.so print it; `category=0` means always printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ldsim.config import Debug


@dataclass(frozen=True)
class FileNeeded:
    """`file=NAME [0];  needed by REQ [0]` (also dlopen and relocation dependencies)."""

    name: str
    requester: str
    how: str = "needed"  # "needed" | "dlopen"
    category = Debug.FILES


@dataclass(frozen=True)
class FindLibrary:
    name: str
    category = Debug.LIBS


@dataclass(frozen=True)
class SearchPath:
    """One ` search path=` line: the directories of one run of records sharing a label."""

    dirs: tuple[str, ...]
    what: str
    where: str | None
    category = Debug.LIBS


@dataclass(frozen=True)
class TryFile:
    path: str
    category = Debug.LIBS


@dataclass(frozen=True)
class SearchCache:
    cache_file: str
    category = Debug.LIBS


@dataclass(frozen=True)
class SearchDone:
    category = Debug.LIBS


@dataclass(frozen=True)
class LoadAuxiliary:
    name: str
    requester: str
    category = Debug.LIBS


@dataclass(frozen=True)
class EmptyDstAuxiliary:
    name: str
    category = Debug.LIBS


@dataclass(frozen=True)
class GeneratingLinkMap:
    name: str
    dynamic: int
    base: int
    size: int
    entry: int
    phdr: int
    phnum: int
    category = Debug.FILES


@dataclass(frozen=True)
class UnsupportedFlags1:
    bits: int
    category = Debug.FILES


@dataclass(frozen=True)
class CheckingVersion:
    version: str
    definer: str
    requester: str
    category = Debug.VERSIONS


@dataclass(frozen=True)
class DebugError:
    """`OBJ: error: OCCASION: MESSAGE (continued|fatal)`: printed under any category but statistics."""

    objname: str
    occasion: str
    message: str
    continued: bool
    category = ~Debug.STATISTICS & 0x3FF


@dataclass(frozen=True)
class Output:
    """Text the loader writes outside LD_DEBUG: the listing (stdout) or error messages (stderr)."""

    text: str
    stream: int = 1  # 1 stdout, 2 stderr
    category = 0


@dataclass(frozen=True)
class Listing:
    """Where the trace-mode listing of loaded objects is written to stdout."""

    category = 0


Event = Union[Listing, FileNeeded, FindLibrary, SearchPath, TryFile, SearchCache, SearchDone, LoadAuxiliary,
              EmptyDstAuxiliary, GeneratingLinkMap, UnsupportedFlags1, CheckingVersion, DebugError, Output]


# -- symbol binding, relocation, init and fini (ldsim.relocate, ldsim.initfini) ----------------------


@dataclass(frozen=True)
class SymbolLookup:
    """`symbol=NAME;  lookup in file=OBJ [0]`: one object visited by do_lookup_x."""

    name: str
    file: str
    category = Debug.SYMBOLS


@dataclass(frozen=True)
class Binding:
    """`binding file REF [0] to DEF [0]: normal|protected symbol `NAME'[ [VERSION]]`."""

    ref: str
    definer: str
    name: str
    version: str | None
    protected: bool = False
    category = Debug.BINDINGS


@dataclass(frozen=True)
class RelocationProcessing:
    name: str
    lazy: bool
    category = Debug.RELOC


@dataclass(frozen=True)
class CallingInit:
    name: str
    preinit: bool = False
    category = Debug.IMPCALLS


@dataclass(frozen=True)
class CallingFini:
    name: str  # raw l_name: "" for the main program
    category = Debug.IMPCALLS


@dataclass(frozen=True)
class ProgramStart:
    """libc's `initialize program: ARGV0` (transfer=False) and `transferring control: ARGV0`."""

    argv0: str
    transfer: bool
    category = Debug.IMPCALLS


@dataclass(frozen=True)
class ObjectScopes:
    """One object of the `Initial object scopes` dump; scopes None = `no scope`; first=True adds the title."""

    name: str
    scopes: tuple[tuple[str, ...], ...] | None
    first: bool = False
    category = Debug.SCOPES


@dataclass(frozen=True)
class Statistics:
    """`runtime linker statistics:` at startup (final=False) or at the end of _dl_fini (final=True).
    Cycle counts are not reproducible: the renderer prints fixed ones."""

    relocations: int
    cache: int
    relative: int = 0
    final: bool = False
    category = Debug.STATISTICS


Event = Union[Event, SymbolLookup, Binding, RelocationProcessing, CallingInit, CallingFini, ProgramStart,  # type: ignore[misc]
              ObjectScopes, Statistics]
