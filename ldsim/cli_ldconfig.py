"""`ldsim ldconfig`: the ldconfig 2.36 emulation as a subcommand (wired into ldsim/cli.py).

Exit status: 0 success; 1 where ldconfig exits 1 (relative dir while building a cache, relative include
under path translation, unreadable or invalid cache with -p: ldconfig's own messages) and for ldsim's own
write failures;
134 where glibc 2.36 ldconfig overflows its old-format array (old/compat cache, legacy-hwcap entries sorted
before others: it may abort, or not, as its heap lies); killed by
SIGSEGV where `ldconfig -p` reads outside its mapping of a corrupt cache.
Emulated ldconfig messages keep their `ldconfig: ` prefix; ldsim's own errors are one line
`ldsim: FILE: reason`.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import stat as S
import sys

from ldsim import ldcache
from ldsim.ldconfig import (LD_SO_CACHE, LD_SO_CONF, HWCAP_IMPORTANT, Options, apply_plan,
                            canon_in_unenterable_root, error_lines, plan_ldconfig)
from ldsim.render.ldconfig import print_cache_lines, render_lines
from ldsim.world import make_world

EXIT_ABORT = 134
# print_version (elf/ldconfig.c) of the simulated build
VERSION_TEXT = """ldconfig (Debian GLIBC 2.36-9+deb12u14) 2.36
Copyright (C) 2022 Free Software Foundation, Inc.
This is free software; see the source for copying conditions.  There is NO
warranty; not even for MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.
Written by Andreas Jaeger."""


HELP_TEXT = """Usage: ldconfig [OPTION...]
Configure Dynamic Linker Run Time Bindings.

  -c, --format=FORMAT        Format to use: new (default), old, or compat
  -C CACHE                   Use CACHE as cache file
  -f CONF                    Use CONF as configuration file
  -i, --ignore-aux-cache     Ignore auxiliary cache file
  -l                         Manually link individual libraries.
  -n                         Only process directories specified on the command
                             line.  Don't build cache.
  -N                         Don't build cache
  -p, --print-cache          Print cache
  -r ROOT                    Change to and use ROOT as root directory
  -v, --verbose              Generate verbose messages
  -X                         Don't update symbolic links
  -?, --help                 Give this help list
      --usage                Give a short usage message
  -V, --version              Print program version

Mandatory or optional arguments to long options are also mandatory or optional
for any corresponding short options.

For bug reporting instructions, please see:
<http://www.debian.org/Bugs/>."""
USAGE_TEXT = """Usage: ldconfig [-ilnNpvX?V] [-c FORMAT] [-C CACHE] [-f CONF] [-r ROOT]
            [--format=FORMAT] [--ignore-aux-cache] [--print-cache] [--verbose]
            [--help] [--usage] [--version]"""
EXIT_ARGP = 64  # argp_err_exit_status
TRY_HELP = "Try `ldconfig --help' or `ldconfig --usage' for more information."

# argp's option table in its order (ldconfig's, argp's defaults, then --version): short letter or long
# name -> (dest, takes an argument).  --program-name and --HANG are argp's hidden options: they take
# part in prefix matching only.  --dry-run is ldsim's.
_SHORT = {"p": ("print_cache", False), "v": ("verbose", False), "N": ("no_cache", False),
          "X": ("no_links", False), "r": ("root", True), "C": ("cache", True), "f": ("conf", True),
          "n": ("only_cline", False), "l": ("manual_link", False), "c": ("format", True),
          "i": ("ignore_aux", False), "?": ("help", False), "V": ("version", False)}
_LONG = {"print-cache": ("print_cache", False), "verbose": ("verbose", False), "format": ("format", True),
         "ignore-aux-cache": ("ignore_aux", False), "help": ("help", False), "usage": ("usage", False),
         "program-name": (None, True), "HANG": (None, False), "version": ("version", False),
         "dry-run": ("dry_run", False)}


class _Usage(Exception):
    pass


def _long(arg: str, rest: list[str], ns: argparse.Namespace) -> None:
    """One `--name[=value]` the way glibc's getopt_long reads it: exact name, else a unique prefix."""
    name, eq, value = arg[2:].partition("=")
    found = [n for n in _LONG if n == name] or [n for n in _LONG if n.startswith(name)]
    if not found:
        raise _Usage(f"unrecognized option '{arg}'")
    if len(found) > 1:
        raise _Usage(f"option '{arg}' is ambiguous; possibilities:" + "".join(f" '--{n}'" for n in found))
    dest, takes = _LONG[found[0]]
    if not takes and eq:
        raise _Usage(f"option '--{found[0]}' doesn't allow an argument")
    if takes and not eq:
        if not rest:
            raise _Usage(f"option '--{found[0]}' requires an argument")
        value = rest.pop(0)
    if dest is None:
        if found[0] == "HANG":
            raise NotImplementedError("argp's --HANG (wait for a debugger) is not simulated")
        return  # --program-name: accepted (ldsim's messages keep the name 'ldconfig')
    setattr(ns, dest, value if takes else True)
    _answer_now(ns)


def _answer_now(ns: argparse.Namespace) -> None:
    """--help, --usage and --version are answered as argp meets them, before later options are read."""
    for dest, text in (("help", HELP_TEXT), ("usage", USAGE_TEXT), ("version", VERSION_TEXT)):
        if getattr(ns, dest, False):
            print(text)
            raise SystemExit(0)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """ldconfig's command line as argp and glibc's getopt_long read it: options and operands in any order
    (unless POSIXLY_CORRECT), `--` ends options, bundled short options, `-cFMT`/`-c FMT`.  A usage error
    prints getopt's message and argp's hint and exits 64."""
    ns = argparse.Namespace(root=None, conf=LD_SO_CONF, cache=None, format="new", only_cline=False,
                            no_cache=False, no_links=False, manual_link=False, print_cache=False, verbose=False,
                            ignore_aux=False, help=False, usage=False, version=False, dry_run=False, dirs=[])
    rest = list(argv)
    try:
        while rest:
            arg = rest.pop(0)
            if arg == "--":
                ns.dirs += rest
                break
            if arg.startswith("--"):
                _long(arg, rest, ns)
            elif arg.startswith("-") and arg != "-":
                k = 1
                while k < len(arg):
                    c = arg[k]
                    if c not in _SHORT:
                        raise _Usage(f"invalid option -- '{c}'")
                    dest, takes = _SHORT[c]
                    if takes:
                        value = arg[k + 1:]
                        if not value:
                            if not rest:
                                raise _Usage(f"option requires an argument -- '{c}'")
                            value = rest.pop(0)
                        setattr(ns, dest, value)
                        break
                    setattr(ns, dest, True)
                    _answer_now(ns)
                    k += 1
            elif "POSIXLY_CORRECT" in os.environ:
                ns.dirs += [arg, *rest]
                break
            else:
                ns.dirs.append(arg)
    except _Usage as e:
        sys.stderr.write(f"ldconfig: {e}\n{TRY_HELP}\n")
        raise SystemExit(EXIT_ARGP) from None
    return ns


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """`ldsim ldconfig ARGS...`: ARGS are read by `parse_args`, as ldconfig reads them (-? for help)."""
    p = subparsers.add_parser("ldconfig", help="emulate glibc 2.36 ldconfig (cache, links, -p; --dry-run)",
                              add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda args: run(parse_args(args.rest[1:] if args.rest[:1] == ["--"] else args.rest)))
    return p


def _hwcap_mask() -> int:
    """LD_HWCAP_MASK as ldconfig's `set_hwcap` reads it (strtoul base 0, garbage gives 0)."""
    text = os.environ.get("LD_HWCAP_MASK")
    if text is None:
        return HWCAP_IMPORTANT
    try:
        return int(text.strip(), 0) & ((1 << 64) - 1)
    except ValueError:
        return 0


def _print_cache(args: argparse.Namespace, world) -> int:
    """Mirrors `print_cache` (elf/cache.c): its messages are ldconfig's own, all fatal (exit 1)."""
    name = args.cache or LD_SO_CACHE
    try:
        st = world.stat(name)
        # open(O_RDONLY) succeeds on a directory; mapping it fails
        data = world.read(name) if not S.S_ISDIR(st.st_mode) else None
    except OSError as e:
        sys.stderr.write(render_lines(error_lines(f"Can't open cache file {name}\n", e)))
        return 1
    if data is None:
        sys.stderr.write(render_lines(error_lines("mmap of cache file failed.\n", errno.ENODEV)))
        return 1
    if not data:
        return 0
    try:
        cache, err = ldcache.print_cache_view(data)
        lines = print_cache_lines(cache, name) if cache is not None else []
    except ldcache.PrintFault:  # the real ldconfig dies, its buffered listing unwritten
        return -signal.SIGSEGV
    if cache is None:
        sys.stderr.write(render_lines(error_lines(err.format(name=name))))
        return 1
    sys.stdout.write(render_lines(lines))
    return 0


def _free_fds() -> int | None:
    """How many descriptors ldconfig would have free: those below the soft RLIMIT_NOFILE that this
    process (its inherited ones: ldconfig holds no others while reading ld.so.conf) does not hold."""
    import resource
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    try:
        listed = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return None
    held = 0
    for fd in listed:
        try:
            os.fstat(fd)  # the listing's own descriptor is closed by now
        except OSError:
            continue
        held += fd < soft
    return max(soft - held, 0)


def _unenterable_root(root: str | None) -> str | None:
    """The -r root, trailing slashes dropped, when chroot(2) would refuse it (missing, not a directory):
    ldconfig then translates the cache's name with chroot_canon (elf/ldconfig.c, main)."""
    if root is None or not root.rstrip("/") or os.path.isdir(root):
        return None
    return root.rstrip("/")


def _translated_cache_name(args: argparse.Namespace, world, root: str) -> tuple[str | None, list[str]]:
    """main's chroot_canon of the cache file's directory: (the name ldconfig uses, its fatal lines)."""
    name = args.cache or LD_SO_CACHE
    slash = name.rfind("/")
    directory, base = (name[:slash], name[slash + 1:]) if slash >= 0 else ("/", name)
    canon, err = canon_in_unenterable_root(world, root, directory)
    if canon is None:
        return None, error_lines(f"Can't open cache file directory {directory if slash >= 0 else '/'}\n", err)
    return f"{canon}/{base}", []


def run(args: argparse.Namespace) -> int:
    world = make_world(args.root)
    unenterable = _unenterable_root(args.root)
    if args.print_cache:
        if unenterable is not None:  # print_cache opens chroot_canon's name, under a root that is no directory
            name = args.cache or LD_SO_CACHE
            canon, err = canon_in_unenterable_root(world, unenterable, name)
            if canon is not None:
                name = canon
                try:
                    os.stat(canon)  # never there: the root is no directory
                except OSError as e:
                    err = e.errno or 0
            sys.stderr.write(render_lines(error_lines(f"Can't open cache file {name}\n", err)))
            return 1
        return _print_cache(args, world)
    shown = None
    if unenterable is not None:
        shown, fatal = _translated_cache_name(args, world, unenterable)
        if fatal:
            sys.stderr.write(render_lines(fatal))
            return 1
    fmt = args.format if args.format in ("new", "compat", "old") else "new"
    opts = Options(
        config_file=args.conf, cache_file=args.cache or LD_SO_CACHE, fmt=fmt, dirs=tuple(args.dirs),
        build_cache=not (args.no_cache or args.only_cline), only_cline=args.only_cline,
        link=not args.no_links, manual_link=args.manual_link, verbose=args.verbose,
        hwcap_mask=_hwcap_mask(), ignore_aux_cache=args.ignore_aux or args.cache is not None,
        free_fds=_free_fds(), cache_file_shown=shown,
    )
    plan = plan_ldconfig(world, opts)
    for stream, line in plan.output:
        (sys.stdout if stream == 1 else sys.stderr).write(line + "\n")
        sys.stdout.flush()
    if plan.exit_status:
        return plan.exit_status
    if args.dry_run:
        for act in plan.actions:
            what = f"symlink {act.path} -> {act.target}" if act.kind == "symlink" else f"unlink {act.path}"
            print(f"ldsim: dry-run: {what}")
        if opts.build_cache and not opts.manual_link:
            size = len(plan.cache_bytes(opts))
            print(f"ldsim: dry-run: write {opts.cache_file} ({len(plan.entries)} entries, {size} bytes)")
        return 0
    errors = apply_plan(world, opts, plan)
    sys.stderr.write(render_lines(errors))
    if errors:
        return 1
    if plan.aborts:
        print(f"ldsim: {opts.cache_file}: glibc 2.36 ldconfig writes past its heap array here (legacy-hwcap "
              f"entries sorted before others in a {fmt} cache) and may abort; the cache was written",
              file=sys.stderr)
        return EXIT_ABORT
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point for tests: `python -m ldsim.cli_ldconfig ARGS`."""
    from ldsim.cli import byte_faithful_streams
    byte_faithful_streams()
    status = run(parse_args(sys.argv[1:] if argv is None else argv))
    if status < 0:  # ends as the real ldconfig did
        from ldsim.cli import _die_by_signal
        _die_by_signal(-status)
    return status


if __name__ == "__main__":
    sys.exit(main())
