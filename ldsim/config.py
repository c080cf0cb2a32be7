"""From the outside world to the loader's settings: `Invocation` (host facts and user inputs) and
`LoaderConfig` (what ld.so has decided after reading its environment and options).

Mirrors `process_envvars` and the option loop of `dl_main` (elf/rtld.c).  Secure mode is decided here,
once, and applied in the few named places glibc applies it.
"""

from __future__ import annotations

from ldsim.glibc import UNSECURE_ENVVARS, Profile
from ldsim.hwcaps import Cpu, HwcapsChoice, split_list
from ldsim.record import Frozen, Key, Value
from ldsim.tunables import NO_TUNABLES, Tunables, dl_strtoul, read_tunables


# glibc.malloc.check's env alias: an SXID_ERASE tunable unless /etc/suid-debug exists (dl-tunables.c
# maybe_enable_malloc_check); erased from the environment in secure mode
MALLOC_CHECK_ALIAS = "MALLOC_CHECK_"


class Mode:
    """How ld.so was asked to run.  Plain strings, not an enum.Enum: `enum` costs ~5 ms of every start."""

    NORMAL = "normal"
    TRACE = "trace"  # LD_TRACE_LOADED_OBJECTS
    LIST = "list"  # ld.so --list: trace output, but missing libraries stay fatal
    VERIFY = "verify"
    HELP = "help"
    LIST_TUNABLES = "list-tunables"  # ld.so --list-tunables (not simulated)
    LIST_DIAGNOSTICS = "list-diagnostics"  # ld.so --list-diagnostics (not simulated)


class Debug:
    """DL_DEBUG_* bits (sysdeps/generic/ldsodefs.h).  Plain ints, not an IntFlag: the mask is tested on
    every lookup and event, and IntFlag's `&` runs Python code each time."""

    LIBS = 1 << 0
    IMPCALLS = 1 << 1
    BINDINGS = 1 << 2
    SYMBOLS = 1 << 3
    VERSIONS = 1 << 4
    RELOC = 1 << 5
    FILES = 1 << 6
    STATISTICS = 1 << 7
    UNUSED = 1 << 8
    SCOPES = 1 << 9


# process_dl_debug's table, in its order (also the help text order)
DEBUG_OPTIONS: tuple[tuple[str, int, str], ...] = (
    ("libs", Debug.LIBS | Debug.IMPCALLS, "display library search paths"),
    ("reloc", Debug.RELOC | Debug.IMPCALLS, "display relocation processing"),
    ("files", Debug.FILES | Debug.IMPCALLS, "display progress for input file"),
    ("symbols", Debug.SYMBOLS | Debug.IMPCALLS, "display symbol table processing"),
    ("bindings", Debug.BINDINGS | Debug.IMPCALLS, "display information about symbol binding"),
    ("versions", Debug.VERSIONS | Debug.IMPCALLS, "display version dependencies"),
    ("scopes", Debug.SCOPES, "display scope information"),
    ("all", Debug.LIBS | Debug.RELOC | Debug.FILES | Debug.SYMBOLS | Debug.BINDINGS | Debug.VERSIONS
     | Debug.IMPCALLS | Debug.SCOPES, "all previous options combined"),
    ("statistics", Debug.STATISTICS, "display relocation statistics"),
    ("unused", Debug.UNUSED, "determined unused DSOs"),
    ("help", 0, "display this help message and exit"),
)


class Credentials(Frozen):
    """A process's ids; `cap_effective`: its effective capability set (bit N = capability N), which
    only file capabilities give a process that is not root's (ldsim.credentials); `no_new_privs`:
    prctl(PR_SET_NO_NEW_PRIVS) is set (execve grants no set-ID ids and no file capabilities)."""

    __slots__ = _fields = ("uid", "euid", "gid", "egid", "cap_effective", "no_new_privs")

    def __init__(self, uid: int, euid: int, gid: int, egid: int, cap_effective: int = 0,
                 no_new_privs: bool = False) -> None:
        _set = object.__setattr__
        _set(self, "uid", uid)
        _set(self, "euid", euid)
        _set(self, "gid", gid)
        _set(self, "egid", egid)
        _set(self, "cap_effective", cap_effective)
        _set(self, "no_new_privs", no_new_privs)


class Invocation(Key):
    """Everything the simulation may know about the outside: nothing is read from the host deeper down.

    env: tuple[tuple[str, str], ...]; secure: --secure, AT_SECURE=1 whatever the kernel would say;
    credentials: the caller's ids before execve, None = not modelled; kernel: the running kernel's
    auxiliary vector (ldsim.auxv.KernelAuxv, for LD_SHOW_AUXV), None = not known; abis: which ELF ABIs
    the kernel executes (ldsim.kernelabi.KernelAbis), None = not known: every one is assumed to run;
    memory: what decides whether the kernel grants a large private mapping (ldsim.vm.AnonMemory: ld.so's
    mappings, the initial thread's TLS block), None = not known (only the address space limits them)."""

    __slots__ = _fields = ("env", "cwd", "pid", "cpu", "profile", "secure", "credentials", "kernel", "abis",
                           "memory")

    def __init__(self, env: tuple[tuple[str, str], ...], cwd: str, pid: int, cpu: Cpu, profile: Profile,
                 secure: bool = False, credentials: Credentials | None = None, kernel: object = None,
                 abis: object = None, memory: object = None) -> None:
        _set = object.__setattr__
        _set(self, "env", env)
        _set(self, "cwd", cwd)
        _set(self, "pid", pid)
        _set(self, "cpu", cpu)
        _set(self, "profile", profile)
        _set(self, "secure", secure)
        _set(self, "credentials", credentials)
        _set(self, "kernel", kernel)
        _set(self, "abis", abis)
        _set(self, "memory", memory)


strtoul = dl_strtoul  # _dl_strtoul (elf/dl-misc.c), shared with the tunables


_NO_HWCAPS_CHOICE = HwcapsChoice()


class LoaderConfig(Value):
    """ld.so's state after `process_envvars` and its command-line options.  Made once per simulated
    process, so without slots: callers and tests may hang their own attributes on it."""

    _fields = ("mode", "trace_program", "warn", "verbose", "lazy", "bind_not", "dynamic_weak", "debug",
               "debug_words_unknown", "debug_help", "debug_output", "library_path", "library_path_source",
               "preload_env", "preload_opt", "audit", "inhibit_cache", "inhibit_rpath", "hwcaps",
               "origin_path", "argv0", "secure", "env_after", "profile", "profile_output", "tunables",
               "show_auxv", "list_lookups")

    def __init__(self, mode: Mode = Mode.NORMAL, trace_program: bool = False, warn: bool = False,
                 verbose: bool = False, lazy: int = 1, bind_not: bool = False, dynamic_weak: bool = False,
                 debug: int = 0, debug_words_unknown: list[str] | None = None, debug_help: bool = False,
                 debug_output: str | None = None, library_path: str | None = None,
                 library_path_source: str = "LD_LIBRARY_PATH", preload_env: str | None = None,
                 preload_opt: str | None = None, audit: list[str] | None = None, inhibit_cache: bool = False,
                 inhibit_rpath: str | None = None, hwcaps: HwcapsChoice | None = None,
                 origin_path: str | None = None, argv0: str | None = None, secure: bool = False,
                 env_after: tuple[tuple[str, str], ...] = (), profile: str | None = None,
                 profile_output: str | None = None, tunables: Tunables = NO_TUNABLES,
                 show_auxv: list[int] | None = None, list_lookups: tuple[str, ...] = ()) -> None:
        self.mode = mode
        self.trace_program = trace_program
        self.warn = warn  # dl_verbose
        self.verbose = verbose  # state.version_info (LD_VERBOSE)
        self.lazy = lazy  # dl_lazy: 1 lazy, 0 now, -1 no relocation at all (--list)
        self.bind_not = bind_not
        self.dynamic_weak = dynamic_weak
        self.debug = debug
        self.debug_words_unknown = [] if debug_words_unknown is None else debug_words_unknown
        self.debug_help = debug_help
        self.debug_output = debug_output
        self.library_path = library_path
        self.library_path_source = library_path_source
        self.preload_env = preload_env
        self.preload_opt = preload_opt
        self.audit = [] if audit is None else audit
        self.inhibit_cache = inhibit_cache
        self.inhibit_rpath = inhibit_rpath
        self.hwcaps = _NO_HWCAPS_CHOICE if hwcaps is None else hwcaps
        self.origin_path = origin_path
        self.argv0 = argv0
        self.secure = secure
        self.env_after = env_after  # the program's environment after secure filtering
        self.profile = profile  # GLRO(dl_profile): LD_PROFILE (ldsim.profiling)
        self.profile_output = profile_output  # LD_PROFILE_OUTPUT, read only when not secure
        self.tunables = tunables  # GLIBC_TUNABLES and LD_HWCAP_MASK (ldsim.tunables)
        # LD_SHOW_AUXV: _dl_show_auxv prints while process_envvars reads it, so each entry is kept as the
        # number of LD_DEBUG warnings printed before it
        self.show_auxv = [] if show_auxv is None else show_auxv
        self.list_lookups = list_lookups  # `ld.so --list PROGRAM NAME...`: the NAMEs (dl_main looks them up)

    def copy(self) -> LoaderConfig:
        """An independent copy (its lists too), for a caller that changes it."""
        new = self.__class__.__new__(self.__class__)
        new.__dict__.update(self.__dict__)
        new.debug_words_unknown = list(self.debug_words_unknown)
        new.audit = list(self.audit)
        new.show_auxv = list(self.show_auxv)
        return new

    @property
    def debug_to_file(self) -> bool:
        """process_envvars opens LD_DEBUG_OUTPUT.PID when some category was named and the process is not
        secure; an empty value is a name too (the file `.PID` in the working directory)."""
        return bool(self.debug) and self.debug_output is not None and not self.secure

    @property
    def tracing(self) -> bool:
        """_dl_map_object_deps' trace_mode: only LD_TRACE_LOADED_OBJECTS fakes missing objects."""
        return self.mode is Mode.TRACE

    @property
    def listing(self) -> bool:
        return self.mode in (Mode.TRACE, Mode.LIST)


def parse_debug(value: str, cfg: LoaderConfig) -> None:
    """process_dl_debug: words separated by runs of ' ', ',' or ':'."""
    word = ""
    for ch in value + " ":
        if ch in " ,:":
            if word:
                for name, bits, _ in DEBUG_OPTIONS:
                    if word == name:
                        cfg.debug |= bits
                        if name == "help":
                            cfg.debug_help = True
                        break
                else:
                    cfg.debug_words_unknown.append(word)
            word = ""
        else:
            word += ch


def read_environment(env: tuple[tuple[str, str], ...], secure: bool) -> LoaderConfig:
    """process_envvars: LD_* entries in environment order, later ones overwriting earlier ones."""
    cfg = LoaderConfig(secure=secure)
    for key, value in env:
        if not key.startswith("LD_"):
            continue
        name = key[3:]
        if name == "WARN":
            cfg.warn = value != ""
        elif name == "DEBUG":
            parse_debug(value, cfg)
            if cfg.debug & Debug.UNUSED:
                # process_dl_debug: DT_NEEDED use needs PLT relocations too, so dl_lazy = 0 now (a later
                # LD_BIND_NOW= sets it back; secure mode's clearing of the mask leaves it at 0)
                cfg.lazy = 0
            if cfg.debug_help:  # process_dl_debug prints the help and _exit(0)s: nothing after is read
                break
        elif name == "SHOW_AUXV" and not secure:
            cfg.show_auxv.append(len(cfg.debug_words_unknown))
        elif name == "AUDIT":
            cfg.audit.append(value)
        elif name == "VERBOSE":
            cfg.verbose = value != ""
        elif name == "PRELOAD":
            cfg.preload_env = value
        elif name == "PROFILE" and value:  # read in secure mode too
            cfg.profile = value
        elif name == "PROFILE_OUTPUT" and value and not secure:
            cfg.profile_output = value
        elif name == "BIND_NOW":
            cfg.lazy = 1 if value == "" else 0
        elif name == "BIND_NOT":
            cfg.bind_not = value != ""
        elif name == "ORIGIN_PATH" and not secure:
            cfg.origin_path = value
        elif name == "LIBRARY_PATH" and not secure:
            cfg.library_path = value
            cfg.library_path_source = "LD_LIBRARY_PATH"
        elif name == "DEBUG_OUTPUT":
            cfg.debug_output = value
        elif name == "DYNAMIC_WEAK" and not secure:
            cfg.dynamic_weak = True
        elif name == "TRACE_LOADED_OBJECTS":
            cfg.mode = Mode.TRACE
            cfg.trace_program = strtoul(value) > 1
    # __tunables_init ran first (LD_HWCAP_MASK is glibc.cpu.hwcap_mask's alias, not an LD_* of its own)
    cfg.tunables = read_tunables(env, secure)
    if cfg.tunables.hwcap_mask is not None:
        cfg.hwcaps = cfg.hwcaps.replace(hwcap_mask=cfg.tunables.hwcap_mask)
    if secure:
        # unsetenv of UNSECURE_ENVVARS (LD_HWCAP_MASK, the one SXID_ERASE tunable alias among them, too)
        cfg.env_after = tuple((k, v) for k, v in env if k not in UNSECURE_ENVVARS)
        cfg.debug_output = None
    else:
        cfg.env_after = env
    return cfg


def apply_secure_debug(cfg: LoaderConfig, suid_debug_exists: bool) -> None:
    """In secure mode the debug mask survives only while /etc/suid-debug exists (process_envvars), and
    so does MALLOC_CHECK_ in the environment (the tunables code)."""
    if cfg.secure and not suid_debug_exists:
        cfg.debug = 0
        cfg.env_after = tuple((k, v) for k, v in cfg.env_after if k != MALLOC_CHECK_ALIAS)


def hwcaps_with_options(cfg: LoaderConfig, prepend: str | None, mask: str | None) -> None:
    if prepend is None and mask is None:  # the same choice: kept, so that memos keyed by it hit at once
        return
    old = cfg.hwcaps
    cfg.hwcaps = old.replace(prepend=tuple(split_list(prepend)) if prepend is not None else old.prepend,
                             mask=tuple(split_list(mask)) if mask is not None else old.mask)
