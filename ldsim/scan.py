"""Whole-root scans: every ELF file under some paths, each resolved as the loader would, and an audit.

Programs (a PT_INTERP naming this profile's loader) are resolved as executed (`Process(direct=False)`:
the kernel maps them, $ORIGIN is their real path); libraries as loaded by `ld.so LIB` (direct mode).
Both run in trace mode (`LD_TRACE_LOADED_OBJECTS`, what ldd does), so every missing object is reported,
not just the first.  One `FileCache` serves the whole scan: each file is parsed once.

Findings are data (`Finding`); rendering and exit statuses belong to render/scan.py and cli_scan.py.
Nothing here touches the host except through the World; input that cannot be read or understood gives
one finding naming the file and the reason, and the scan goes on.
"""

from __future__ import annotations

import errno as E
import gc
import posixpath
import stat as stat_mod
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Callable, Iterable

from ldsim import events as ev
from ldsim.config import Credentials, Invocation, LoaderConfig, Mode, read_environment
from ldsim.dst import DstValues, dst_count, substitute
from ldsim.elf import DF1, ElfError, ElfFile, EType
from ldsim.fanout import ordered_map
from ldsim.linkmap import FileCache, Kind as MapKind
from ldsim.loader import Exit, Process
from ldsim.search import LoadError
from ldsim.world import MAXSYMLINKS, World

BIN_DIRS = ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin", "/sbin")
LD_SO_CONF = "/etc/ld.so.conf"
MAX_CONF_DIRS = 4096  # an ld.so.conf naming more directories than this is garbage; the rest is ignored
UNPRIVILEGED = Credentials(65534, 65534, 65534, 65534)  # who the secure-mode audit imagines running it


class ProblemKind(str, Enum):
    """What a finding is about; `.value` is its name in tables and JSON."""

    MISSING_LIBRARY = "missing-library"
    MISSING_VERSION = "missing-version"
    WRONG_CLASS = "wrong-class"  # only files of another ELF class or machine carry the name
    LOAD_ERROR = "load-error"  # the loader would stop: a dependency it cannot map
    MISSING_INTERPRETER = "missing-interpreter"
    LIBRARY_PATH_ONLY = "library-path-only"
    PRELOAD_IGNORED = "preload-ignored"  # an LD_PRELOAD or /etc/ld.so.preload entry ld.so cannot load
    UNDEFINED_SYMBOL = "undefined-symbol"
    COPY_SIZE = "copy-size"  # a copy relocation whose definition changed size (LD_WARN's warning)
    PROTECTED_REFERENCE = "protected-reference"  # the program copies or takes the address of a protected symbol
    SECURE_MODE_DIFFERS = "secure-mode-differs"
    RPATH_RELATIVE = "rpath-relative"
    RPATH_EMPTY = "rpath-empty"
    RPATH_OUTSIDE_ROOT = "rpath-outside-root"
    RPATH_WRITABLE = "rpath-writable"
    BAD_FILE = "bad-file"  # unreadable, special, symlink loop, malformed ELF

    @property
    def group(self) -> str:
        if self.name.startswith("RPATH") or self is ProblemKind.SECURE_MODE_DIFFERS:
            return "security"
        return "input" if self is ProblemKind.BAD_FILE else "resolution"


@dataclass(frozen=True)
class Finding:
    """One problem: in `file` (the scanned path), about `subject` (a library name, version, RPATH entry)."""

    kind: ProblemKind
    file: str
    subject: str
    detail: str
    via: str = ""  # the object whose request it was, when not the scanned file itself
    status: int | None = None  # a load error's exit status (negative: the signal that killed ld.so)


@dataclass
class ScanStats:
    entries: int = 0  # directory entries looked at
    elf_files: int = 0
    programs: int = 0
    libraries: int = 0
    static: int = 0  # statically linked programs: no loader involved
    other_elf: int = 0  # relocatable objects, core files, debug files
    foreign: int = 0  # another class or machine: not this loader's (the i386 or x32 ld.so's)
    duplicates: int = 0  # the same file reached again (hard or symbolic link)


@dataclass
class ScanResult:
    root: str
    findings: list[Finding] = field(default_factory=list)
    stats: ScanStats = field(default_factory=ScanStats)
    symbols_checked: bool = False  # whether undefined symbols under immediate binding were looked for

    @property
    def problems(self) -> bool:
        return bool(self.findings)


@dataclass(frozen=True)
class Target:
    path: str
    kind: str  # "program" | "library"
    elf: ElfFile
    st: object


@dataclass
class ScanOptions:
    paths: list[str] = field(default_factory=list)  # empty: the usual bin and lib dirs of the root
    recursive: bool | None = None  # None: recursive for given paths, flat for the default dirs
    check_symbols: bool = True
    rooted: bool = False  # a sysroot (--root): RPATHs climbing out of it are reported
    jobs: int = 1  # processes checking the files with the symbol check (forked after discovery: `_check_all`)


# ------------------------------------------------------------------------------------------ discovery


def default_dirs(world: World, inv: Invocation, notes: list[Finding]) -> list[str]:
    """The usual bin dirs, the loader's system dirs and the directories of ld.so.conf (includes followed)."""
    from ldsim.ldconf import expand_conf
    dirs = list(BIN_DIRS) + [d.rstrip("/") for d in inv.profile.system_dirs]
    budget = _Budget(world, CONF_BUDGET)
    try:
        conf = expand_conf(budget, LD_SO_CONF)
    except (OSError, ValueError, RecursionError) as e:  # garbage beyond what ldconfig tolerates
        notes.append(Finding(ProblemKind.BAD_FILE, LD_SO_CONF, LD_SO_CONF, f"cannot read: {_reason(e)}"))
        return dirs
    if budget.left < 0:
        notes.append(Finding(ProblemKind.BAD_FILE, LD_SO_CONF, LD_SO_CONF,
                             f"includes and globs need more than {CONF_BUDGET} file operations; "
                             "the rest was not read"))
    for d in conf.diagnostics:
        if d.ldsim_only:  # include cycles and the like: worth a line, the scan goes on
            where, sep, what = d.message.partition(": ")  # "FILE:LINE: reason"
            where, what = (where, what) if sep else (LD_SO_CONF, d.message)
            notes.append(Finding(ProblemKind.BAD_FILE, where, LD_SO_CONF, what))
    for c in conf.dirs[:MAX_CONF_DIRS]:
        if c.path.startswith("/") and c.path not in dirs:
            dirs.append(c.path)
    if len(conf.dirs) > MAX_CONF_DIRS:
        notes.append(Finding(ProblemKind.BAD_FILE, LD_SO_CONF, LD_SO_CONF,
                             f"names {len(conf.dirs)} directories; only the first {MAX_CONF_DIRS} scanned"))
    canonical: list[str] = []  # /lib/x86_64-linux-gnu and /usr/lib/x86_64-linux-gnu are one directory
    for d in dirs:
        try:
            real = world.realpath(d)
        except OSError:
            real = d
        if real not in canonical:
            canonical.append(real)
    return canonical


CONF_BUDGET = 5000  # filesystem operations for ld.so.conf and its includes (huge globs stay bounded)


class _Budget:
    """A World that refuses (ENOMEM, which glob and include expansion skip) after `left` operations."""

    def __init__(self, world: World, left: int) -> None:
        self._world = world
        self.left = left
        self.root = world.root
        self.cwd = getattr(world, "cwd", "/")

    def __getattr__(self, name: str):
        inner = getattr(self._world, name)
        if not callable(inner):
            return inner

        def call(*a, **kw):
            self.left -= 1
            if self.left < 0:
                raise OSError(E.ENOMEM, "ldsim: file operation budget exhausted", a[0] if a else "")
            return inner(*a, **kw)
        return call


class MemoWorld:
    """A World that answers each question once per scan (files do not change under a scan): a thousand
    programs open the same libc.  Failures are remembered too, and raised again."""

    def __init__(self, world: World) -> None:
        self._world = world
        self.root = world.root
        self.cwd = getattr(world, "cwd", "/")
        self._memo: dict[tuple[str, str], object] = {}
        self.loaders: dict[str, bool] = {}  # a PT_INTERP's real path -> is it this profile's loader

    def _ask(self, what: str, path: str):
        key = (what, path)
        hit = self._memo.get(key, _MISSING)
        if hit is _MISSING:
            try:
                hit = getattr(self._world, what)(path)
            except OSError as e:
                hit = e
            self._memo[key] = hit
        if isinstance(hit, OSError):
            raise OSError(hit.errno, hit.strerror, hit.filename)
        return hit

    def open(self, path: str):
        return self._ask("open", path)

    def stat(self, path: str):
        return self._ask("stat", path)

    def lstat(self, path: str):
        return self._ask("lstat", path)

    def realpath(self, path: str) -> str:
        return self._ask("realpath", path)

    def readable(self, path: str) -> bool:
        return self._ask("readable", path)

    def exe_link(self, path: str) -> str:
        """A scanned root is judged as it runs booted, procfs on /proc: a program's $ORIGIN is its real
        directory even where the root's /proc is empty now (the real loader chrooted there has none)."""
        return self._ask("realpath", path)

    def readlink(self, path: str) -> str:
        return self._ask("readlink", path)

    def read(self, path: str, limit: int | None = None) -> bytes:  # not memoised: each file read once
        return self._world.read(path, limit)

    def __getattr__(self, name: str):  # listdir, read, getxattr, host_path: passed through
        return getattr(self._world, name)


_MISSING = object()


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno:
        return {E.ELOOP: "symbolic link loop", E.ENOENT: "no such file or directory"}.get(
            e.errno, E.errorcode.get(e.errno, "error").lower() + f" ({e.strerror})")
    return str(e) or type(e).__name__


_SPECIAL = ((stat_mod.S_ISFIFO, "a FIFO"), (stat_mod.S_ISCHR, "a character device"),
            (stat_mod.S_ISBLK, "a block device"), (stat_mod.S_ISSOCK, "a socket"))


def walk(world: World, top: str, recursive: bool, explicit: bool, notes: list[Finding],
         stats: ScanStats) -> Iterable[tuple[str, list[str], object]]:
    """The regular files under `top`, through the World only: (directory, names, None) for the files a
    directory lists as regular (no stat per file: `discover` reads them in one batch), (path, [], stat) for
    a file reached through a symlink or named itself.  Symlinked files are followed, symlinked directories
    only when named at the top (never inside: no loops, no escapes); special files are never opened."""
    try:
        st = world.stat(top)
    except OSError as e:
        if explicit or e.errno == E.ELOOP:
            notes.append(Finding(ProblemKind.BAD_FILE, top, top, f"cannot scan: {_reason(e)}"))
        return
    if not stat_mod.S_ISDIR(st.st_mode):
        yield from _file(world, top, st, notes, explicit)
        return
    seen_dirs = {(st.st_dev, st.st_ino)}
    stack = [top.rstrip("/") or "/"]
    S_IFDIR, S_IFLNK, S_IFREG = stat_mod.S_IFDIR, stat_mod.S_IFLNK, stat_mod.S_IFREG
    while stack:
        d = stack.pop()
        try:
            entries = sorted(world.scandir(d))
        except OSError as e:
            notes.append(Finding(ProblemKind.BAD_FILE, d, d, f"cannot list: {_reason(e)}"))
            continue
        stats.entries += len(entries)
        regular = [name for name, fmt in entries if fmt == S_IFREG]  # most of a tree's entries
        if regular:
            yield d, regular, None
        subdirs = []
        prefix = (d if d != "/" else "") + "/"
        for name, fmt in entries:
            if fmt == S_IFREG:
                continue
            path = prefix + name
            try:
                lst = world.lstat(path)
            except OSError as e:
                notes.append(Finding(ProblemKind.BAD_FILE, path, path, f"cannot stat: {_reason(e)}"))
                continue
            fmt = stat_mod.S_IFMT(lst.st_mode)
            if fmt == S_IFDIR:
                if recursive and (lst.st_dev, lst.st_ino) not in seen_dirs:
                    seen_dirs.add((lst.st_dev, lst.st_ino))
                    subdirs.append(path)
                continue
            if fmt == S_IFLNK:
                try:
                    lst = world.stat(path)
                except OSError as e:
                    if e.errno != E.ENOENT:  # dangling links are common and harmless: not reported
                        notes.append(Finding(ProblemKind.BAD_FILE, path, path, _reason(e)))
                    continue
                if not stat_mod.S_ISREG(lst.st_mode):  # linked dirs are not entered; links to
                    continue  # devices (masked units -> /dev/null) are an idiom, and never opened
            yield from _file(world, path, lst, notes, False)
        stack.extend(reversed(subdirs))


def _file(world: World, path: str, st, notes: list[Finding], explicit: bool) -> Iterable[tuple[str, list[str], object]]:
    if stat_mod.S_ISREG(st.st_mode):
        yield path, [], st
        return
    for test, what in _SPECIAL:
        if test(st.st_mode):
            notes.append(Finding(ProblemKind.BAD_FILE, path, path, f"not a regular file ({what}): not opened"))
            return


_ELF_MAGIC = b"\x7fELF"


def _heads(world: World, where: str, names: list[str], st) -> list[tuple[str, object, object]]:
    """(path, first bytes or OSError, fstat of an ELF file) of a batch `walk` gave."""
    if st is None:  # a directory's regular files
        prefix = (where if where != "/" else "") + "/"
        return [(prefix + name, data, fst) for name, data, fst in world.heads(where, names, 64, _ELF_MAGIC)]
    d, _, name = where.rpartition("/")  # one file reached through a link (or named itself)
    return [(where, data, fst) for _, data, fst in world.heads(d or "/", [name], 64, _ELF_MAGIC)]


def discover(world: World, inv: Invocation, files: FileCache, tops: list[str], recursive: bool, explicit: bool,
             notes: list[Finding], stats: ScanStats) -> list[Target]:
    """The programs and libraries under `tops`, each file once however many links reach it.  (Forked
    readers of the files' heads were tried: on two CPUs the parsing here is the bottleneck, and the
    scan got slower.)"""
    targets: list[Target] = []
    seen: dict[tuple[int, int], Target | None] = {}  # each file's first target (None: not one)
    origins: set[tuple[int, int, str]] = set()  # (file, $ORIGIN) pairs resolved
    inner = getattr(world, "_world", world)  # the walk's lstats are not asked again: not memoised
    for top in tops:
        for where, names, st in walk(inner, top, recursive, explicit, notes, stats):
            for path, data, fst in _heads(inner, where, names, st):
                if isinstance(data, OSError):
                    notes.append(Finding(ProblemKind.BAD_FILE, path, path, f"cannot read: {_reason(data)}"))
                    continue
                if fst is None:
                    continue  # not ELF
                key = (fst.st_dev, fst.st_ino)
                if key in seen:
                    first = seen[key]
                    t = None if first is None else Target(path, first.kind, first.elf, st or fst)
                    origin = None if t is None else _origin_of(world, t)
                    if origin is None or (*key, origin) in origins:
                        stats.duplicates += 1
                        continue
                    origins.add((*key, origin))  # another $ORIGIN: another resolution (ld.so LINK, a hard link)
                    stats.libraries += t.kind == "library"
                    stats.programs += t.kind == "program"
                    targets.append(t)
                    continue
                t = classify(world, inv, files, path, st or fst, data, notes, stats)
                seen[key] = t
                if t is not None:
                    targets.append(t)
                    origin = _origin_of(world, t)
                    if origin is not None:
                        origins.add((*key, origin))
    return targets


def _origin_of(world: World, t: Target) -> str | None:
    """The $ORIGIN this path gives the file, when its resolution depends on it (a dynamic string token in
    DT_NEEDED, a filter, DT_RPATH or DT_RUNPATH); None when every path to it resolves the same."""
    elf = t.elf
    strings = [raw for _, raw in elf.deps] + [elf.effective_rpath or "", elf.runpath or ""]
    return _origin(world, t) if any("$" in text for text in strings) else None


def classify(world: World, inv: Invocation, files: FileCache, path: str, st, head: bytes,
             notes: list[Finding], stats: ScanStats) -> Target | None:
    """Is this ELF file (`head`: its first 64 bytes) one of this loader's, and is it a program (has
    PT_INTERP) or a library?"""
    stats.elf_files += 1
    p = inv.profile
    if len(head) < 20:
        notes.append(Finding(ProblemKind.BAD_FILE, path, path, f"malformed ELF file: only {len(head)} bytes"))
        return None
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    if head[4] != p.ei_class or machine != p.e_machine or head[5] != 1:
        stats.foreign += 1
        return None
    try:
        opened = world.open(path)
        if opened.data is None:
            raise OSError(opened.read_errno or E.EIO, "read failed")
        elf = files.parse(opened)
    except OSError as e:
        notes.append(Finding(ProblemKind.BAD_FILE, path, path, f"cannot read: {_reason(e)}"))
        return None
    except ElfError as e:
        notes.append(Finding(ProblemKind.BAD_FILE, path, path, f"malformed ELF file: {e}"))
        return None
    if elf.e_type not in (EType.EXEC, EType.DYN):
        stats.other_elf += 1
        return None
    if elf.interp is not None and (st.st_mode & 0o111 or elf.e_type == EType.EXEC):
        stats.programs += 1
        return Target(path, "program", elf, st)
    # not executable but with PT_INTERP (libcap.so.2 and the like): a library that could also run
    if elf.e_type == EType.EXEC or (elf.flags_1 & DF1.PIE and elf.interp is None) or not elf.has_dynamic:
        stats.static += 1
        return None
    stats.libraries += 1
    return Target(path, "library", elf, st)


# ------------------------------------------------------------------------------------------ resolution


class _ScanProcess(Process):
    """A Process that keeps, as data, what ld.so would only print: version errors, the fatal error,
    and every file a search skipped for its class or machine."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.version_errors: list[tuple[str, str]] = []  # (definer, message)
        self.load_error: LoadError | None = None
        self.skipped: dict[str, list[str]] = {}  # name searched -> candidates of another class/machine
        self.preload_errors: list[tuple[str, str, str]] = []  # (name, LD_PRELOAD or the file, reason)
        self._current: list[str] = []
        inner = self.searcher.open_verify

        def open_verify(path, res):
            opened = inner(path, res)
            if opened is None and res.tried and res.tried[-1].outcome.startswith(("wrong ELF class",
                                                                                  "wrong machine")):
                self._current.append(f"{path} ({res.tried[-1].outcome})")
            return opened
        self.searcher.open_verify = open_verify

    def map_object(self, loader, name, **kw):
        self._current = []
        m = super().map_object(loader, name, **kw)
        if m.faked and self._current:
            self.skipped.setdefault(name, []).extend(self._current)
        return m

    def bind_now_main(self) -> None:
        """What `ldd -r` (LD_WARN, LD_BIND_NOW) reports for the scanned file's own references: each one
        looked up in its scope now.  Only the file's own relocations are processed: the others' are
        reported when their files are scanned (one finding per reference, not one per program).
        The binder's symbol tables belong to the FileCache, so its memos (each file's references, each
        object's definitions) serve the whole scan."""
        self.unresolved: list[tuple[str, str]] = []
        self.copy_sizes: list[str] = []  # symbols whose copy relocation draws the size warning
        self.protected: list[tuple[str, str]] = []  # (symbol, warning) of _dl_check_protected_symbol
        if self.main is None or self.main.elf is None or self.load_error is not None or not self.result.searchlist:
            return
        if self.result.status not in (None, 0):  # ld.so stopped before relocating (an assertion)
            return
        binder = getattr(self, "binder", None)
        if binder is None:
            return
        binder.receiver = lambda objname, message: self.unresolved.append((objname, message))
        binder.size_receiver = self.copy_sizes.append
        binder.protected_receiver = lambda name, text: self.protected.append((name, text))
        try:
            binder.undefined_now(self.main)
        except Exit as e:  # ld.so stops here (check_match's assertion, a crash): what was reported stands
            self.result.status = e.status

    def _preload_failed(self, fname: str, source: str, reason: str) -> None:
        self.preload_errors.append((fname, source, reason))
        super()._preload_failed(fname, source, reason)

    def _version_error(self, objname: str, message: str) -> None:
        self.version_errors.append((objname, message))
        super()._version_error(objname, message)

    def fatal(self, err: LoadError, occasion: str = "error while loading shared libraries",
              progname: str | None = None) -> None:
        self.load_error = err
        super().fatal(err, occasion, progname)


def _config(inv: Invocation, env: tuple[tuple[str, str], ...], secure: bool) -> LoaderConfig:
    cfg = read_environment(env, secure)
    cfg.mode = Mode.TRACE  # every missing object faked and reported, like ldd
    cfg.debug = 0
    return cfg


def resolve(world: World, inv: Invocation, files: FileCache, t: Target, *,
            env: tuple[tuple[str, str], ...] | None = None, secure: bool = False,
            symbols: bool = False) -> _ScanProcess:
    """`symbols`: also bind the file's own references now (ldd -r's undefined-symbol check)."""
    env = inv.env if env is None else env
    cfg = _config(inv, env, secure)
    if t.kind == "program":
        proc = _ScanProcess(world, inv, cfg, files, program=t.path, direct=False)
    else:
        proc = _ScanProcess(world, inv, cfg, files, program=t.path, direct=True, rtld_path=inv.profile.rtld)
    proc.start()
    if symbols:
        proc.bind_now_main()
    return proc


def _interp_ok(world: World, inv: Invocation, t: Target, out: list[Finding]) -> bool:
    """The kernel opens PT_INTERP; a loader other than this profile's is not simulated."""
    interp = t.elf.interp or ""
    try:
        real = world.realpath(interp)
        world.stat(interp)
    except OSError as e:
        out.append(Finding(ProblemKind.MISSING_INTERPRETER, t.path, interp,
                           f"program interpreter {interp}: {_reason(e)}"))
        return False
    try:
        ours = world.realpath(inv.profile.rtld)
    except OSError:
        ours = inv.profile.rtld
    if real == ours or interp == inv.profile.rtld:
        return True
    return _same_loader(world, real, inv)


def _same_loader(world: World, real: str, inv: Invocation) -> bool:
    """Is the file at `real` (another PT_INTERP: a copy of ld.so, a private install) a build of this
    profile's loader?  Then the program is resolved like the others (`ldsim run` does the same)."""
    known = getattr(world, "loaders", None)
    if known is not None and real in known:
        return known[real]
    from ldsim.profiles import identify_loader
    found = identify_loader(world, real)
    same = found is not None and found.name == inv.profile.name
    if known is not None:
        known[real] = same
    return same


def resolution_findings(proc: _ScanProcess, t: Target) -> list[Finding]:
    out: list[Finding] = [Finding(ProblemKind.PRELOAD_IGNORED, t.path, name,
                                  f"from {source} cannot be preloaded ({reason}): ignored")
                          for name, source, reason in dict.fromkeys(proc.preload_errors)]
    seen: set[tuple[str, str]] = set()
    for m in proc.listed() if _lists(proc) else ():
        if not m.faked:  # a missing DT_AUXILIARY filtee too: optional when run, but traced "not found"
            continue
        name = m.names[0]
        via = proc.dso_filename(m.loader) if m.loader is not None else ""
        via = "" if via == t.path else via
        if (name, via) in seen:
            continue
        seen.add((name, via))
        skipped = proc.skipped.get(name)
        if skipped:
            out.append(Finding(ProblemKind.WRONG_CLASS, t.path, name,
                               "not found; skipped " + ", ".join(dict.fromkeys(skipped)), via))
        else:
            out.append(Finding(ProblemKind.MISSING_LIBRARY, t.path, name, "not found", via))
    for definer, message in dict.fromkeys(proc.version_errors):
        subject = message.split("`", 1)[1].split("'", 1)[0] if "`" in message else definer
        out.append(Finding(ProblemKind.MISSING_VERSION, t.path, subject, f"{definer}: {message}"))
    for objname, message in dict.fromkeys(getattr(proc, "unresolved", ())):
        if (objname or t.path) == t.path:
            name = message.split(": ", 1)[1].split(",", 1)[0] if ": " in message else message
            out.append(Finding(ProblemKind.UNDEFINED_SYMBOL, t.path, name, message))
    for name in dict.fromkeys(getattr(proc, "copy_sizes", ())):
        out.append(Finding(ProblemKind.COPY_SIZE, t.path, name,
                           f"Symbol `{name}' has different size in shared object, consider re-linking"))
    for name, text in dict.fromkeys(getattr(proc, "protected", ())):
        out.append(Finding(ProblemKind.PROTECTED_REFERENCE, t.path, name, text))
    err = proc.load_error
    if err is not None:
        suffix = ""
        if err.errcode:
            from ldsim.glibc import ldso_strerror
            suffix = f": {ldso_strerror(err.errcode)}"
        out.append(Finding(ProblemKind.LOAD_ERROR, t.path, err.objname, f"{err.message}{suffix}",
                           status=proc.result.status if proc.result.status is not None else 127))
    elif proc.result.status not in (None, 0):  # an assertion or a crash: ld.so's status is the verdict
        status = proc.result.status
        text = "".join(e.text for e in proc.result.events if getattr(e, "stream", 1) == 2).strip()
        why = f"killed by {_signal_name(-status)}" if status < 0 else f"exit status {status}"
        out.append(Finding(ProblemKind.LOAD_ERROR, t.path, t.path,
                           text.splitlines()[-1] if text else f"ld.so {why}", status=status))
    return out


def _signal_name(signo: int) -> str:
    import signal
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"signal {signo}"


def _lists(proc: Process) -> bool:
    """Does the trace list the link map at all?  Not when ld.so stopped before dl_main's listing (an
    assertion in the version check, a fatal error), and dl_main (elf/rtld.c) prints only "statically
    linked" for a main object without DT_NEEDED, whatever its filtees (DT_FILTER, DT_AUXILIARY) brought in."""
    main = proc.main
    if main is None or main.elf is None or not main.elf.needed:
        return False
    return any(isinstance(e, ev.Listing) for e in proc.result.events)


def _resolution_map(proc: Process) -> list[tuple[str, str | None]]:
    return [(m.names[0], None if m.faked else m.name) for m in proc.objects
            if m.kind is MapKind.LIB]


def llp_only_findings(world: World, inv: Invocation, files: FileCache, t: Target,
                      proc: Process) -> list[Finding]:
    """Objects found through LD_LIBRARY_PATH that are missing without it."""
    via_llp = {m.names[0]: m.name for m in proc.objects
               if not m.faked and m.found is not None and m.found.step == "LD_LIBRARY_PATH"}
    if not via_llp:
        return []
    env = tuple((k, v) for k, v in inv.env if k != "LD_LIBRARY_PATH")
    again = resolve(world, inv, files, t, env=env)
    missing = {m.names[0] for m in again.objects if m.faked}
    return [Finding(ProblemKind.LIBRARY_PATH_ONLY, t.path, name,
                    f"found only through LD_LIBRARY_PATH ({path})")
            for name, path in via_llp.items() if name in missing]


# ------------------------------------------------------------------------------------------ security


def privileged(world: World, t: Target) -> str | None:
    """Why an unprivileged caller's exec of this program would run in secure mode, or None."""
    try:
        from ldsim import credentials
    except ImportError:  # without the credentials model: the set-ID bits alone
        credentials = None
    st = t.st
    if credentials is not None and hasattr(world, "getxattr"):
        try:
            caps = credentials.file_caps(world, t.path)
        except OSError:
            caps = None
        d = credentials.decide_at_secure(st.st_mode, st.st_uid, st.st_gid, caps, UNPRIVILEGED)
        return d.reason if d.secure else None
    if st.st_mode & stat_mod.S_ISUID:
        return "set-user-ID"
    if st.st_mode & stat_mod.S_ISGID and st.st_mode & stat_mod.S_IXGRP:
        return "set-group-ID"
    return None


def secure_findings(world: World, inv: Invocation, files: FileCache, t: Target, proc: Process) -> list[Finding]:
    why = privileged(world, t)
    if why is None:
        return []
    sec = resolve(world, inv, files, t, secure=True)
    a, b = _resolution_map(proc), _resolution_map(sec)
    if a == b:
        return []
    changes = [f"{n}: {p or 'not found'}" for n, p in a if (n, p) not in b]
    changes += [f"{n}: {p or 'not found'} in secure mode" for n, p in b if (n, p) not in a]
    return [Finding(ProblemKind.SECURE_MODE_DIFFERS, t.path, t.path,
                    f"{why}; resolution differs in secure mode: " + "; ".join(changes))]


def _origin(world: World, t: Target) -> str:
    path = t.path
    if t.kind == "program":
        try:
            path = world.realpath(path)
        except OSError:
            pass
    return posixpath.dirname(path) or "/"


def _climbs_out(world: World, path: str) -> str | None:
    """Does resolving `path` (lexically and through symlinks, inside the World) ever go above '/'?
    Returns the offending step, or None."""
    pending = [c for c in path.split("/") if c][::-1]
    parts: list[str] = []
    hops = 0
    while pending:
        comp = pending.pop()
        if comp == ".":
            continue
        if comp == "..":
            if not parts:
                return "'..' above the root"
            parts.pop()
            continue
        cand = "/" + "/".join(parts + [comp])
        try:
            st = world.lstat(cand)
        except OSError:
            parts.append(comp)
            continue
        if stat_mod.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAXSYMLINKS:
                return None
            try:
                target = world.readlink(cand)
            except OSError:
                return None
            if target.startswith("/"):
                parts = []
            else:
                # a relative target climbing out of the root from the link's directory
                depth = len(parts)
                for c in target.split("/"):
                    if c == "..":
                        depth -= 1
                        if depth < 0:
                            return f"symbolic link {cand} -> {target} leaves the root"
                    elif c and c != ".":
                        depth += 1
            pending.extend(c for c in reversed(target.split("/")) if c)
            continue
        parts.append(comp)
    return None


def _writable(world: World, path: str) -> str | None:
    """Who else could put a library into `path`: it is writable by others, or does not exist and an
    ancestor others may write to could create it, or an ancestor lets others rename it."""
    try:
        st = world.stat(path)
    except OSError:
        st = None
    if st is not None and stat_mod.S_ISDIR(st.st_mode) and st.st_mode & stat_mod.S_IWOTH:
        return f"{path} is writable by others (mode {stat_mod.S_IMODE(st.st_mode):04o})"
    missing = st is None
    d = path
    while d not in ("/", ""):
        d = posixpath.dirname(d)
        try:
            a = world.stat(d)
        except OSError:
            continue
        if a.st_mode & stat_mod.S_IWOTH:
            if missing:
                return f"{path} does not exist and {d} is writable by others"
            if not a.st_mode & stat_mod.S_ISVTX:
                return f"{d} (above {path}) is writable by others without the sticky bit"
        missing = False  # only the nearest existing ancestor could create it
    return None


def rpath_findings(world: World, inv: Invocation, t: Target, rooted: bool) -> list[Finding]:
    """DT_RPATH (when no DT_RUNPATH) and DT_RUNPATH entries that another user or the cwd could feed."""
    out: list[Finding] = []
    elf = t.elf
    dst = DstValues(origin=_origin(world, t), platform=inv.cpu.platform, lib=inv.profile.lib)
    for tag, value in (("RPATH", elf.effective_rpath), ("RUNPATH", elf.runpath)):
        if not value:  # absent, or "" (an empty tag disables the search entirely)
            continue
        for elem in value.split(":"):
            subject = f"{tag} {elem!r}"
            if elem == "":
                out.append(Finding(ProblemKind.RPATH_EMPTY, t.path, subject,
                                   f"empty entry in {tag} {value!r}: searches the current directory"))
                continue
            expanded = substitute(elem, dst) if dst_count(elem) else elem
            if not expanded:
                continue
            if not expanded.startswith("/"):
                out.append(Finding(ProblemKind.RPATH_RELATIVE, t.path, subject,
                                   "relative to the current directory, not to the file"))
                continue
            if rooted:
                why = _climbs_out(world, expanded)
                if why:
                    out.append(Finding(ProblemKind.RPATH_OUTSIDE_ROOT, t.path, subject,
                                       f"{expanded}: {why}"))
                    continue
            why = _writable(world, posixpath.normpath(expanded))
            if why:
                out.append(Finding(ProblemKind.RPATH_WRITABLE, t.path, subject, why))
    return out


# ------------------------------------------------------------------------------------------ symbols


def _symbol_checker() -> bool:
    """The binding engine (ldsim.relocate), when this tree has one: undefined symbols under BIND_NOW."""
    try:
        from ldsim import relocate  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------------------------------------ the scan


def scan(world: World, inv: Invocation, opts: ScanOptions, files: FileCache | None = None,
         progress: Callable[[int, int, str], None] | None = None) -> ScanResult:
    """Discover, classify, resolve, audit.  Pure given the World: findings only, no printing."""
    files = files or FileCache()
    world = MemoWorld(world)
    res = ScanResult(root=world.root)
    notes = res.findings
    stats = res.stats
    explicit = bool(opts.paths)
    tops = list(opts.paths) if explicit else default_dirs(world, inv, notes)
    recursive = explicit if opts.recursive is None else opts.recursive
    targets = discover(world, inv, files, tops, recursive, explicit, notes, stats)
    res.symbols_checked = opts.check_symbols and _symbol_checker()
    opts = replace(opts, check_symbols=res.symbols_checked)
    # the parsed files live to the end: out of the collector's sight, full collections do not rescan
    # them (~10% of the checks) and forked checkers do not copy their pages by touching them
    gc.freeze()
    try:
        for findings in _check_all(world, inv, files, targets, opts, progress):
            res.findings.extend(findings)
    finally:
        gc.unfreeze()
    return res


_MIN_SHARE = 32  # files per worker, at least: below that a fork costs more than it saves


def _check_all(world: World, inv: Invocation, files: FileCache, targets: list[Target], opts: ScanOptions,
               progress: Callable[[int, int, str], None] | None) -> Iterable[list[Finding]]:
    """Each target's findings, in order.  With `opts.jobs` > 1 the checks run in forked workers
    (ldsim.fanout): they inherit the files discovery parsed (each file of the scanned paths is parsed
    once, in this process, and shared copy-on-write); a dependency outside them, and the symbol lookups'
    memos, are made once per worker.  The findings come back pickled, in the targets' order."""
    n = len(targets)
    # without the symbol check a file's check is ~0.5 ms: the workers' first touches of the shared files
    # cost about what they save
    jobs = opts.jobs if opts.check_symbols else 1
    tell = None if progress is None else (lambda i: progress(i, n, targets[i].path))
    yield from ordered_map(lambda t: check_target(world, inv, files, t, opts), targets, jobs,
                           min_share=_MIN_SHARE, progress=tell)
    if progress is not None:
        progress(n, n, "")


def check_target(world: World, inv: Invocation, files: FileCache, t: Target, opts: ScanOptions) -> list[Finding]:
    out: list[Finding] = []
    if t.kind == "program" and not _interp_ok(world, inv, t, out):
        return out
    try:
        proc = resolve(world, inv, files, t, symbols=opts.check_symbols)
    except (LoadError, Exit, OSError, ElfError, RecursionError) as e:  # defensive: never stop the scan
        return [Finding(ProblemKind.BAD_FILE, t.path, t.path, f"cannot resolve: {_reason(e)}")]
    except Exception as e:  # a malformed symbol or relocation table the binding engine chokes on
        return [Finding(ProblemKind.BAD_FILE, t.path, t.path, f"cannot bind: {type(e).__name__}: {e}")]
    out += resolution_findings(proc, t)
    if any(k == "LD_LIBRARY_PATH" for k, _ in inv.env):
        out += llp_only_findings(world, inv, files, t, proc)
    if t.kind == "program":
        out += secure_findings(world, inv, files, t, proc)
    out += rpath_findings(world, inv, t, opts.rooted)
    return out
