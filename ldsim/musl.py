"""musl's dynamic linker (ldso/dynlink.c, musl 1.2.3) for roots and programs whose interpreter is
`ld-musl-ARCH.so.1`: its own, much smaller rules, and `ld-musl --list` (musl's ldd) as output.

The rules, as `load_library` applies them:
- a name that is libc/libpthread/librt/libm/libdl/libutil/libxnet (`lib` + reserved + '.') is the loader
  itself, reported once per reserved name;
- a name with '/' is opened as is; otherwise an already loaded object whose short name (basename of the
  path it was found at) is the name is reused; then LD_LIBRARY_PATH, then the RPATH/RUNPATH (alike, and
  RUNPATH wins) of the requesting object and of each object up its needed-by chain, then the path file
  `PREFIX/etc/ld-musl-ARCH.path` (PREFIX: the loader's path up to its second-last '/'), read once; when
  it does not exist, /lib:/usr/local/lib:/usr/lib;
- path lists split on ':' and '\\n'; the candidate is `DIR/NAME` (no trailing-'/' normalisation);
  the first file that opens is the one (no ELF class or machine check: a wrong file fails to map);
- a found file already loaded (same dev and inode) is that object; no cache, no hwcaps, only $ORIGIN.
Objects load breadth-first, DT_NEEDED of each in order; preloads (LD_PRELOAD, split on blanks and ':')
come first and failures there are silent.  A missing library prints an error and loading goes on; the
status is then 127.  Then reloc_all: every symbol reference of every object (the program last) is looked
up by name in the list of loaded objects, versions ignored; each one not found (and not weak undefined)
prints "Error relocating", status 127 (x86-64's relocation types only).
"""

from __future__ import annotations

import errno as E
import struct
from dataclasses import dataclass, field

from ldsim.elf import ElfError, ElfFile, parse_elf
from ldsim.world import World

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ldsim.symbols import SymbolTable

DEFAULT_PATH = "/lib:/usr/local/lib:/usr/lib"
# LDSO_ARCH -> (ELF class, e_machine) of the loader's own build (musl's arch/*/reloc.h).  Only the class
# matters: map_library never looks at e_machine (a foreign object maps; only its relocation types fail).
ARCH_ABI = {"x86_64": (2, 62), "aarch64": (2, 183), "i386": (1, 3), "arm": (1, 40), "armhf": (1, 40),
            "riscv64": (2, 243), "powerpc64le": (2, 21), "s390x": (2, 22), "mips64el": (2, 8)}
RESERVED = ("c", "pthread", "rt", "m", "dl", "util", "xnet")  # dynlink.c `reserved`
NAME_MAX = 255
PATH_BUF = 2 * NAME_MAX + 2  # load_library's `buf`: path_open skips a candidate that does not fit
# find_sym2's OK_TYPES (NOTYPE, OBJECT, FUNC, COMMON, TLS) and OK_BINDS (GLOBAL, WEAK, GNU_UNIQUE)
OK_TYPES = frozenset((0, 1, 2, 5, 6))
OK_BINDS = frozenset((1, 2, 10))
STT_TLS = 6
# arch/x86_64/reloc.h: the R_X86_64_* types do_relocs' switch handles (64, PC32, COPY, GLOB_DAT,
# JUMP_SLOT, RELATIVE, DTPMOD64, DTPOFF64, TPOFF64, TLSDESC); JUMP_SLOT is REL_PLT, COPY REL_COPY
X86_64_HANDLED = frozenset((1, 2, 5, 6, 7, 8, 16, 17, 18, 36))
X86_64_PLT, X86_64_COPY = 7, 5
DT_RELA_TAG = 7
_SEPS = ":\n"


# musl's src/errno/__strerror.h: its own wording (strerror(0) and unknown codes: the first entry)
_STRERROR = {
    0: "No error information", "EILSEQ": "Illegal byte sequence", "EDOM": "Domain error",
    "ERANGE": "Result not representable", "ENOTTY": "Not a tty", "EACCES": "Permission denied",
    "EPERM": "Operation not permitted", "ENOENT": "No such file or directory", "ESRCH": "No such process",
    "EEXIST": "File exists", "EOVERFLOW": "Value too large for data type", "ENOSPC": "No space left on device",
    "ENOMEM": "Out of memory", "EBUSY": "Resource busy", "EINTR": "Interrupted system call",
    "EAGAIN": "Resource temporarily unavailable", "ESPIPE": "Invalid seek", "EXDEV": "Cross-device link",
    "EROFS": "Read-only file system", "ENOTEMPTY": "Directory not empty",
    "ECONNRESET": "Connection reset by peer", "ETIMEDOUT": "Operation timed out",
    "ECONNREFUSED": "Connection refused", "EHOSTDOWN": "Host is down", "EHOSTUNREACH": "Host is unreachable",
    "EADDRINUSE": "Address in use", "EPIPE": "Broken pipe", "EIO": "I/O error",
    "ENXIO": "No such device or address", "ENOTBLK": "Block device required", "ENODEV": "No such device",
    "ENOTDIR": "Not a directory", "EISDIR": "Is a directory", "ETXTBSY": "Text file busy",
    "ENOEXEC": "Exec format error", "EINVAL": "Invalid argument", "E2BIG": "Argument list too long",
    "ELOOP": "Symbolic link loop", "ENAMETOOLONG": "Filename too long",
    "ENFILE": "Too many open files in system", "EMFILE": "No file descriptors available",
    "EBADF": "Bad file descriptor", "ECHILD": "No child process", "EFAULT": "Bad address",
    "EFBIG": "File too large", "EMLINK": "Too many links", "ENOLCK": "No locks available",
    "EDEADLK": "Resource deadlock would occur", "ENOTRECOVERABLE": "State not recoverable",
    "EOWNERDEAD": "Previous owner died", "ECANCELED": "Operation canceled",
    "ENOSYS": "Function not implemented", "ENOMSG": "No message of desired type", "EIDRM": "Identifier removed",
    "ENOSTR": "Device not a stream", "ENODATA": "No data available", "ETIME": "Device timeout",
    "ENOSR": "Out of streams resources", "ENOLINK": "Link has been severed", "EPROTO": "Protocol error",
    "EBADMSG": "Bad message", "EBADFD": "File descriptor in bad state", "ENOTSOCK": "Not a socket",
    "EDESTADDRREQ": "Destination address required", "EMSGSIZE": "Message too large",
    "EPROTOTYPE": "Protocol wrong type for socket", "ENOPROTOOPT": "Protocol not available",
    "EPROTONOSUPPORT": "Protocol not supported", "ESOCKTNOSUPPORT": "Socket type not supported",
    "ENOTSUP": "Not supported", "EPFNOSUPPORT": "Protocol family not supported",
    "EAFNOSUPPORT": "Address family not supported by protocol", "EADDRNOTAVAIL": "Address not available",
    "ENETDOWN": "Network is down", "ENETUNREACH": "Network unreachable",
    "ENETRESET": "Connection reset by network", "ECONNABORTED": "Connection aborted",
    "ENOBUFS": "No buffer space available", "EISCONN": "Socket is connected",
    "ENOTCONN": "Socket not connected", "ESHUTDOWN": "Cannot send after socket shutdown",
    "EALREADY": "Operation already in progress", "EINPROGRESS": "Operation in progress",
    "ESTALE": "Stale file handle", "EREMOTEIO": "Remote I/O error", "EDQUOT": "Quota exceeded",
    "ENOMEDIUM": "No medium found", "EMEDIUMTYPE": "Wrong medium type", "EMULTIHOP": "Multihop attempted",
    "ENOKEY": "Required key not available", "EKEYEXPIRED": "Key has expired",
    "EKEYREVOKED": "Key has been revoked", "EKEYREJECTED": "Key was rejected by service",
}
_STRERROR_BY_CODE = {(k if isinstance(k, int) else getattr(E, k)): v for k, v in _STRERROR.items() if
                     isinstance(k, int) or hasattr(E, k)}


def strerror(errnum: int) -> str:
    """musl's strerror (Linux errno values), not the host libc's: `%m` and `%s` of the loader's messages."""
    return _STRERROR_BY_CODE.get(errnum, _STRERROR[0])


@dataclass(frozen=True)
class Loaded:
    """`\\t%s => %s (%p)`: a newly loaded object (name asked for, path it was found at)."""

    name: str
    path: str
    is_ldso: bool = False


@dataclass(frozen=True)
class LoadFailed:
    """`Error loading shared library %s: %m (needed by %s)` (only for DT_NEEDED)."""

    name: str
    errnum: int
    needed_by: str


@dataclass(frozen=True)
class Fatal:
    """The command line could not even start: `ldname: MESSAGE`, exit 1."""

    message: str


@dataclass(frozen=True)
class RelocFailed:
    """`Error relocating %s: %s` (do_relocs): a symbol not found, or a type its switch lacks."""

    dso: str
    message: str


Event = Loaded | LoadFailed | Fatal | RelocFailed


@dataclass(eq=False)
class Dso:
    name: str  # the path it was opened with (p->name)
    shortname: str | None
    file_id: tuple[int, int] | None
    elf: ElfFile | None
    needed_by: Dso | None
    rpath: str | None = None
    rpath_done: bool = False
    is_ldso: bool = False
    kernel_mapped: bool = False  # the program, mapped by execve: its $ORIGIN is /proc/self/exe's


@dataclass(frozen=True)
class Request:
    """One `load_library` call: who asked (None: a preload), for what, what it gave and how."""

    requester: Dso | None
    name: str
    result: Dso | None
    how: str  # the step that found it ("RPATH of /app/m", "path file /etc/...", "already loaded", ...)
    new: bool  # the call loaded a new object


@dataclass
class MuslResult:
    ldso_name: str
    events: list[Event] = field(default_factory=list)
    objects: list[Dso] = field(default_factory=list)  # the chain, in load order (app first)
    requests: list[Request] = field(default_factory=list)
    status: int = 0


def split_path(s: str) -> list[str]:
    """path_open's walk: runs of ':' and '\\n' separate; empty elements never occur."""
    return _split_runs(s, lambda ch: ch in _SEPS)


def reserved_index(name: str) -> int | None:
    """The reserved-name offset of `lib<r>.` names (the loader itself), or None."""
    if not name.startswith("lib"):
        return None
    at = 0
    for r in RESERVED:
        if name[3:].startswith(r + "."):
            return at
        at += len(r) + 1
    return None


def path_file(ldso_name: str, arch: str) -> str:
    """`%.*s/etc/ld-musl-ARCH.path` with the loader path cut before its second-last '/'."""
    prefix = ""
    if ldso_name.startswith("/"):
        t = z = 0
        for i, ch in enumerate(ldso_name):
            if ch == "/":
                z, t = t, i
        prefix = ldso_name[:z]
    return f"{prefix}/etc/ld-musl-{arch}.path"


def arch_of(ldso_name: str) -> str:
    """LDSO_ARCH from the installed name `ld-musl-ARCH.so.1` (x86_64 otherwise)."""
    base = ldso_name.rsplit("/", 1)[-1]
    if base.startswith("ld-musl-") and base.endswith(".so.1"):
        return base[len("ld-musl-"):-len(".so.1")]
    return "x86_64"


class MuslLoader:
    """One `ld-musl --list PROGRAM` run.  Pure given the World: events and objects only."""

    def __init__(self, world: World, env: dict[str, str], cwd: str, ldname: str) -> None:
        self.world = world
        self.env = env
        self.cwd = cwd
        self.ldname = ldname  # argv[0] of the loader as invoked
        self.sys_path: str | None = None
        self.sys_how = ""
        self.errno = 0
        self.reported = 0
        self.how = ""
        self.result = MuslResult(ldname)

    # -- files ---------------------------------------------------------------------------------

    def _open(self, path: str) -> tuple[tuple[int, int], ElfFile | None, int] | None:
        """open + fstat; the ELF is parsed later by map_library (None = not mappable), with the errno of
        its read() (a directory opens: its read fails with EISDIR)."""
        try:
            opened = self.world.open(path)
        except OSError as e:
            self.errno = e.errno or E.ENOENT
            return None
        elf = None
        if opened.data is not None:
            try:
                elf = parse_elf(bytes(opened.data))
            except ElfError:
                elf = None
        return (opened.st.st_dev, opened.st.st_ino), elf, opened.read_errno

    def _path_open(self, name: str, paths: str) -> tuple[str, tuple] | None | bool:
        """path_open: None = not found (go on); False = an error that stops the search."""
        for d in split_path(paths):
            cand = f"{d}/{name}"
            if len(cand.encode("utf-8", "surrogateescape")) >= PATH_BUF:
                continue  # snprintf truncated it: not tried, errno untouched
            got = self._open(cand)
            if got is not None:
                return cand, got
            if self.errno not in (E.ENOENT, E.ENOTDIR, E.EACCES, E.ENAMETOOLONG):
                return False
        return None

    def _system_path(self) -> str:
        if self.sys_path is None:
            pf = path_file(self.result.ldso_name, arch_of(self.result.ldso_name))
            try:
                self.sys_path = self.world.read(pf).decode("utf-8", "surrogateescape")
            except FileNotFoundError:
                self.sys_path = None
            except OSError:
                self.sys_path = ""
            self.sys_how = f"path file {pf}" if self.sys_path is not None else "default path " + DEFAULT_PATH
        return DEFAULT_PATH if self.sys_path is None else self.sys_path

    def _rpath(self, p: Dso) -> str | None:
        """fixup_rpath: RUNPATH over RPATH, $ORIGIN and ${ORIGIN} from the object's path; any other
        '$' makes the whole list unusable."""
        if p.rpath_done:
            return p.rpath
        p.rpath_done = True
        if p.elf is None:
            return None
        orig = p.elf.runpath if p.elf.runpath is not None else p.elf.rpath
        if orig is None or "$" not in orig:
            p.rpath = orig
            return p.rpath
        rest = orig
        while "$" in rest:
            t = rest.index("$")
            if not (rest.startswith("$ORIGIN", t) or rest.startswith("${ORIGIN}", t)):
                return None
            rest = rest[t + 1:]
        origin = self._exe_dir(p.name) if p.kernel_mapped else _dirname(p.name)
        if origin is None:
            return None
        out, s = "", orig
        while "$" in s:
            t = s.index("$")
            out += s[:t] + origin
            s = s[t + (9 if s.startswith("${", t) else 7):]
        p.rpath = out + s
        return p.rpath

    def _exe_dir(self, path: str) -> str | None:
        """fixup_rpath for a kernel-mapped program: the directory of readlink("/proc/self/exe").  When
        that fails (a root with nothing on /proc) or does not fit the buffer, the object has no RPATH
        at all.  (A failure other than ENOENT, ENOTDIR or EACCES, which stops the whole search, is not
        simulated.)"""
        try:
            link = self.world.exe_link(path)
        except OSError:
            return None
        if len(link.encode("utf-8", "surrogateescape")) >= PATH_BUF:
            return None
        return _dirname(link)

    # -- load_library ---------------------------------------------------------------------------

    def request(self, name: str, needed_by: Dso | None) -> Dso | None:
        """load_library, recorded with how it ended."""
        before = len(self.result.objects)
        self.how = "not found"
        got = self.load_library(name, needed_by)
        self.result.requests.append(Request(needed_by, name, got, self.how, len(self.result.objects) > before))
        return got

    def load_library(self, name: str, needed_by: Dso | None) -> Dso | None:
        objs = self.result.objects
        if not name:
            self.errno = E.EINVAL
            return None
        idx = reserved_index(name)
        if idx is not None or name == self.result.ldso_name:
            if idx is not None and not self.reported & (1 << idx):
                self.reported |= 1 << idx
                self.result.events.append(Loaded(name, self.result.ldso_name, True))
            self.how = "the loader itself"
            return self._ldso()
        got = None
        if "/" in name:
            pathname = name
            self.how = "path as given"
            got = self._open(name)
        else:
            for p in objs[1:]:
                if p.shortname == name:
                    self.how = "already loaded (by name)"
                    return p
            if len(name) > NAME_MAX:
                return None
            found: tuple | None | bool = None
            if self.env.get("LD_LIBRARY_PATH"):
                self.how = "LD_LIBRARY_PATH"
                found = self._path_open(name, self.env["LD_LIBRARY_PATH"])
            p = needed_by
            while found is None and p is not None:
                rp = self._rpath(p)
                if rp:
                    kind = "RUNPATH" if p.elf is not None and p.elf.runpath is not None else "RPATH"
                    self.how = f"{kind} of {p.name}"
                    found = self._path_open(name, rp)
                p = p.needed_by
            if found is None:
                sys_path = self._system_path()
                self.how = self.sys_how
                found = self._path_open(name, sys_path)
            if not found:
                return None
            pathname, got = found
        if got is None:
            return None
        fid, elf, read_errno = got
        for p in objs[1:]:
            if p.file_id == fid:
                if p.shortname is None and pathname != name:
                    p.shortname = p.name.rsplit("/", 1)[-1]
                self.how += ", already loaded (same file)"
                return p
        if read_errno:
            self.errno = read_errno  # map_library: `if (l<0) return 0;`
            return None
        if not self._mappable(elf):
            self.errno = E.ENOEXEC
            return None
        if defines(elf, "__libc_start_main") and defines(elf, "stdin"):
            # "Avoid the danger of getting two versions of libc mapped": any libc (musl's or glibc's,
            # reached by a path or a search) stands for the loader itself
            self.how += ", a libc: the loader itself"
            how = self.how
            got = self.load_library("libc.so", needed_by)
            self.how = how
            return got
        short = pathname.rsplit("/", 1)[-1] if pathname != name else None
        dso = Dso(pathname, short, fid, elf, needed_by)
        objs.append(dso)
        self.result.events.append(Loaded(name, pathname))
        return dso

    def _mappable(self, elf: ElfFile | None) -> bool:
        """map_library's checks: ET_EXEC/ET_DYN with a PT_DYNAMIC, the header read as the loader's own
        class (another class finds no PT_DYNAMIC)."""
        abi = ARCH_ABI.get(arch_of(self.result.ldso_name))
        return elf is not None and elf.e_type in (2, 3) and bool(elf.segments) and elf.has_dynamic \
            and (abi is None or elf.ei_class == abi[0])

    def _ldso(self) -> Dso:
        objs = self.result.objects
        for p in objs:
            if p.is_ldso:
                return p
        dso = Dso(self.result.ldso_name, None, None, None, None, is_ldso=True)
        objs.append(dso)
        return dso

    # -- the run ------------------------------------------------------------------------------

    def run(self, program: str, relocate: bool = False, executed: bool = False) -> MuslResult:
        """__dls3 in command mode with --list: map the program, preloads, then breadth-first deps, and
        with `relocate` the relocation pass's errors (what the listing prints; a tree needs only loading).
        `executed`: the program was mapped by execve (PT_INTERP names this loader): its name is
        AT_EXECFN and its $ORIGIN /proc/self/exe's."""
        res = self.result
        try:
            opened = self.world.open(program)
        except OSError as e:
            res.events.append(Fatal(f"cannot load {program}: {strerror(e.errno or E.ENOENT)}"))
            res.status = 1
            return res
        try:
            elf = parse_elf(bytes(opened.data or b""))
        except ElfError:
            elf = None
        if elf is None or not elf.segments or elf.e_type not in (2, 3) or not elf.has_dynamic:
            # map_library: `if (!dyn) goto noexec;` (a static program is not one)
            res.events.append(Fatal(f"{program}: Not a valid dynamic program"))
            res.status = 1
            return res
        if elf.interp:
            res.ldso_name = elf.interp
        app = Dso(program, None, None, elf, None, kernel_mapped=executed)
        res.objects.append(app)
        preload = self.env.get("LD_PRELOAD")
        if preload:
            for pname in _split_preload(preload):
                self.request(pname, None)
        i = 0
        while i < len(res.objects):
            p = res.objects[i]
            i += 1
            if p.elf is None:
                continue
            for dep in p.elf.needed:
                if self.request(dep, p) is None:
                    res.events.append(LoadFailed(dep, self.errno, p.name))
                    res.status = 127
        if relocate and arch_of(self.ldname) == "x86_64":  # other arches' types: not simulated
            self.relocate_all()
        return res

    # -- relocation (reloc_all, do_relocs): only whether each symbol is found ----------------------

    def relocate_all(self) -> None:
        """`reloc_all(app.next); reloc_all(&app)`: every object after the program (the loader too, its
        stage-2 `relocated` flag cleared), then the program, each looking its symbols up in the global
        chain (add_syms: the object list in order; the vDSO is never in it)."""
        from ldsim.symbols import SymbolTable
        objs = self.result.objects
        tables: list[tuple[Dso, SymbolTable]] = []
        for p in objs:
            elf = p.elf if not p.is_ldso else self._ldso_elf()
            if elf is not None:
                try:
                    tables.append((p, SymbolTable(elf)))
                except (struct.error, IndexError, ValueError, TypeError):
                    continue
        memo: dict[tuple[str, bool, bool], bool] = {}
        for p, table in tables[1:] + tables[:1]:
            try:
                self._do_relocs(p, table, tables, memo)
            except (struct.error, IndexError, ValueError, TypeError):
                continue  # tables outside the file: musl would fault there; not simulated

    def _ldso_elf(self) -> ElfFile | None:
        """The running loader's own symbols (the binary invoked, whatever name PT_INTERP gave it)."""
        try:
            return parse_elf(bytes(self.world.open(self.ldname).data or b""))
        except (OSError, ElfError):
            return None

    def _do_relocs(self, p: Dso, table: SymbolTable, tables: list, memo: dict) -> None:
        """do_relocs over DT_JMPREL, DT_REL and DT_RELA in that order, as reloc_all calls it."""
        elf = table.elf
        stride = 3 if elf.dyn(DT_RELA_TAG) is not None and elf.dyn(20) == DT_RELA_TAG else 2
        for tag, size_tag, words in ((23, 2, stride), (17, 18, 2), (7, 8, 3)):
            start, size = elf.dyn(tag), elf.dyn(size_tag) or 0
            off = elf.vaddr_to_offset(start) if start else None
            if off is None or size <= 0:
                continue
            step = 8 * words
            for at in range(off, off + size - size % step, step):
                info = struct.unpack_from("<Q", elf.data, at + 8)[0]
                self._reloc(p, table, info & 0x7FFFFFFF, info >> 32, tables, memo)

    def _reloc(self, p: Dso, table: SymbolTable, rtype: int, sym_index: int, tables: list,
               memo: dict) -> None:
        if rtype == 0 or (p.is_ldso and rtype == 8):  # REL_NONE; ldso skips its relative entries
            return
        if sym_index:
            sym = table.symbol(sym_index)
            if sym.bind != 0:  # not STB_LOCAL: find_sym(ctx, name, type==REL_PLT)
                key = (sym.name, rtype == X86_64_PLT, rtype == X86_64_COPY)
                found = memo.get(key)
                if found is None:
                    chain = tables[1:] if key[2] else tables  # REL_COPY: head->syms_next
                    found = memo[key] = any(defined_in(t, sym.name, key[1]) for _, t in chain)
                if not found and (sym.shndx != 0 or sym.bind != 2):
                    self._reloc_error(p, f"{sym.name}: symbol not found")
                    return
        if rtype not in X86_64_HANDLED:
            self._reloc_error(p, f"unsupported relocation type {rtype}")

    def _reloc_error(self, p: Dso, message: str) -> None:
        self.result.events.append(RelocFailed(p.name, message))
        self.result.status = 127  # ldso_fail


def _dirname(name: str) -> str:
    """fixup_rpath's origin: up to the last '/' ("." without one)."""
    cut = name.rfind("/")
    return name[:cut] if cut >= 0 else "."


def defines(elf: ElfFile, name: str) -> bool:
    """find_sym(dso, name, 1) on one object."""
    from ldsim.symbols import SymbolTable
    try:
        return defined_in(SymbolTable(elf), name, True)
    except (struct.error, IndexError, ValueError, TypeError):
        return False  # tables outside the file: musl would fault; not simulated


def defined_in(table: SymbolTable, name: str, need_def: bool) -> bool:
    """find_sym2's test of one object (a SymbolTable): the first hash-chain entry of that name whose versym
    is not hidden (no version is matched), kept if defined (or, without need_def, undefined with an
    address: not TLS), non-zero (TLS excepted) and of an accepted type and binding."""
    from ldsim.symbols import gnu_hash
    if table.symtab is None or table.strtab is None:
        return False
    for idx in table.chain(name, gnu_hash(name.encode("utf-8", "surrogateescape"))):
        sym = table.symbol(idx)
        v = table.versym(idx)
        if sym.name != name or (v is not None and v & 0x8000):
            continue
        if sym.shndx == 0 and (need_def or sym.type == STT_TLS):
            return False
        return (sym.value != 0 or sym.type == STT_TLS) and sym.type in OK_TYPES and sym.bind in OK_BINDS
    return False


def _split_preload(s: str) -> list[str]:
    """load_preload: names separated by runs of white space or ':'."""
    return _split_runs(s, lambda ch: ch.isspace() or ch == ":")


def _split_runs(s: str, is_sep) -> list[str]:
    """Split on runs of separator characters; empty elements never occur."""
    out, cur = [], ""
    for ch in s:
        if is_sep(ch):
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def render_list(res: MuslResult, ldname: str) -> list[tuple[int, str]]:
    """What `ld-musl --list` writes, as (stream, text) in order (addresses are "0x0")."""
    out: list[tuple[int, str]] = []
    for e in res.events:
        if isinstance(e, Fatal):
            out.append((2, f"{ldname}: {e.message}\n"))
            return out
    out.append((1, f"\t{res.ldso_name} (0x0)\n"))
    for e in res.events:
        if isinstance(e, Loaded):
            out.append((1, f"\t{e.name} => {e.path} (0x0)\n"))
        elif isinstance(e, LoadFailed):
            out.append((2, f"Error loading shared library {e.name}: {strerror(e.errnum)} "
                           f"(needed by {e.needed_by})\n"))
        elif isinstance(e, RelocFailed):
            out.append((2, f"Error relocating {e.dso}: {e.message}\n"))
    return out


def render_exec(res: MuslResult) -> list[tuple[int, str]]:
    """What the loader of an executed program writes: only its errors (no listing outside ldd mode)."""
    return [chunk for chunk in render_list(res, res.ldso_name) if chunk[0] == 2]


def run_exec(world: World, env: dict[str, str], cwd: str, interp: str, program: str) -> tuple[list, int]:
    """`exec PROGRAM` whose PT_INTERP is musl's loader: what the loader prints and its status (127 after
    an error; 0 otherwise: what the program then does is not seen).  Secure mode is not simulated."""
    res = MuslLoader(world, env, cwd, interp).run(program, relocate=True, executed=True)
    return render_exec(res), res.status


def run_list(world: World, env: dict[str, str], cwd: str, ldname: str, program: str) -> tuple[list, int]:
    """`LDNAME --list PROGRAM`: output chunks and exit status."""
    res = MuslLoader(world, env, cwd, ldname).run(program, relocate=True)
    return render_list(res, ldname), res.status


MUSL_VERSION = "1.2.3"  # Debian 12's musl; printed by the usage text


def run_ldso(world: World, env: dict[str, str], cwd: str, ldname: str,
             argv: list[str]) -> tuple[list[tuple[int, str]], int]:
    """`LDNAME [--list] [--library-path P] [--preload P] [--argv0 A] [--] PROGRAM`: the command-line
    loop of `__dls3`.  Options override LD_LIBRARY_PATH / LD_PRELOAD; an unknown option ends the loop
    as if PROGRAM were missing.  Only --list (and a name ending in "ldd") is simulated: running the
    program is not.  Returns (chunks, status); status None = not simulated."""
    list_mode = ldname.endswith("ldd")
    env = dict(env)
    args = list(argv)
    program = None
    while args and args[0].startswith("--"):
        opt = args.pop(0)[2:]
        if not opt:
            break
        for word, key in (("list", None), ("library-path", "LD_LIBRARY_PATH"), ("preload", "LD_PRELOAD"),
                          ("argv0", "")):
            if key is None and opt == word:
                list_mode = True
                break
            if key is not None and opt.startswith(word):
                rest = opt[len(word):]
                if rest.startswith("="):
                    value = rest[1:]
                elif rest:
                    args = []  # *argv = 0: no program
                    break
                elif args:
                    value = args.pop(0)
                else:
                    break
                if key:
                    env[key] = value
                break
        else:
            args = []  # argv[0] = 0
            break
    program = args[0] if args else None
    if program is None:
        usage = (f"musl libc ({arch_of(ldname)})\nVersion {MUSL_VERSION}\nDynamic Program Loader\n"
                 f"Usage: {ldname} [options] [--] pathname{'' if list_mode else ' [args]'}\n")
        return [(2, usage)], 1
    if not list_mode:
        return [], None
    res = MuslLoader(world, env, cwd, ldname).run(program, relocate=True)
    return render_list(res, ldname), res.status
