"""LD_DEBUG text exactly as glibc formats it (elf/dl-printf.c `_dl_debug_vdprintf` and each message's
format string), one renderer per event type."""

from __future__ import annotations

from ldsim import events as ev
from ldsim.config import DEBUG_OPTIONS


SIM_CYCLES = (1000000, 250000, 500000)  # timings a simulation cannot know: total, relocation, loading


def prefix(pid: int) -> str:
    """The PID right-aligned in 10 columns, ':' and a TAB."""
    return f"{pid:>10}:\t"


def message(e: ev.Event) -> str | None:
    """The formatted message of a debug event, newlines as in its format string; None for non-debug."""
    match e:
        case ev.FileNeeded(name, req, how):
            verb = "needed by" if how == "needed" else "dynamically loaded by"
            return f"\nfile={name} [0];  {verb} {req} [0]\n"
        case ev.FindLibrary(name):
            return f"find library={name} [0]; searching\n"
        case ev.SearchPath(dirs, what, where):
            tail = f"\t\t({what} from file {where})\n" if where is not None else f"\t\t({what})\n"
            return " search path=" + ":".join(dirs) + tail
        case ev.TryFile(path):
            return f"  trying file={path}\n"
        case ev.SearchCache(path):
            return f" search cache={path}\n"
        case ev.SearchDone():
            return "\n"
        case ev.LoadAuxiliary(name, req):
            return f"load auxiliary object={name} requested by file={req}\n"
        case ev.EmptyDstAuxiliary(name):
            return f"cannot load auxiliary `{name}' because of empty dynamic string token substitution\n"
        case ev.GeneratingLinkMap(name):
            return f"file={name} [0];  generating link map\n"
        case ev.MappedObject(dynamic, base, size, entry, phdr, phnum, w):
            return (f"  dynamic: 0x{dynamic:0{w}x}  base: 0x{base:0{w}x}   size: 0x{size:0{w}x}\n"
                    f"    entry: 0x{entry:0{w}x}  phdr: 0x{phdr:0{w}x}  phnum:   {phnum:{w}d}\n\n")
        case ev.UnsupportedFlags1(bits):
            return f"\nWARNING: Unsupported flag value(s) of 0x{bits:x} in DT_FLAGS_1.\n"
        case ev.CheckingVersion(version, definer, requester):
            return f"checking for version `{version}' in file {definer} [0] required by file {requester} [0]\n"
        case ev.DebugError(obj, occasion, msg, continued):
            return f"{obj}: error: {occasion}: {msg} ({'continued' if continued else 'fatal'})\n"
        case ev.SymbolLookup(name, file):
            return f"symbol={name};  lookup in file={file} [0]\n"
        case ev.Binding(ref, definer, name, version, protected):
            kind = "protected" if protected else "normal"
            tail = f" [{version}]\n" if version is not None else "\n"
            return f"binding file {ref} [0] to {definer} [0]: {kind} symbol `{name}'{tail}"
        case ev.RelocationProcessing(name, lazy):
            return f"\nrelocation processing: {name}{' (lazy)' if lazy else ''}\n"
        case ev.CallingInit(name, preinit):
            return f"\ncalling {'preinit' if preinit else 'init'}: {name}\n\n"
        case ev.CallingFini(name):
            return f"\ncalling fini: {name} [0]\n\n"
        case ev.ProgramStart(argv0, transfer):
            return f"\n{'transferring control' if transfer else 'initialize program'}: {argv0}\n\n"
        case ev.Statistics(relocations, cache, relative, final):
            if final:
                return ("\nruntime linker statistics:\n"
                        f"           final number of relocations: {relocations}\n"
                        f"final number of relocations from cache: {cache}\n")
            return ("\nruntime linker statistics:\n"
                    f"  total startup time in dynamic loader: {SIM_CYCLES[0]} cycles\n"
                    f"            time needed for relocation: {SIM_CYCLES[1]} cycles (25.0%)\n"
                    f"                 number of relocations: {relocations}\n"
                    f"      number of relocations from cache: {cache}\n"
                    f"        number of relative relocations: {relative}\n"
                    f"           time needed to load objects: {SIM_CYCLES[2]} cycles (50.0%)\n")
        case ev.ObjectScopes(name, scopes, first):
            head = "\nInitial object scopes\n" if first else ""
            body = "".join(f" scope {i}:" + "".join(f" {n}" for n in sc) + "\n" for i, sc in enumerate(scopes)) \
                if scopes is not None else " no scope\n"
            return f"{head}object={name} [0]\n{body}\n"
    return None


_ARG_NL = "\0"  # stands for a newline inside an argument: no C string holds a NUL


def debug_lines(text: str, pid: int) -> str:
    """Prefix every line the format started: after each format newline followed by more text.  A
    newline that came in through a %s argument (a name, a path) starts no tag: _dl_debug_vdprintf
    looks for newlines in the format only; `text` has those as _ARG_NL."""
    p = prefix(pid)
    parts = text.split("\n")
    out = [p + part + "\n" for part in parts[:-1]]
    if parts[-1]:
        out.append(p + parts[-1])
    joined = "".join(out)
    return joined.replace(_ARG_NL, "\n") if _ARG_NL in joined else joined


def _arg(value):
    """A field as a %s argument: its newlines marked as the argument's own (tuples of names too)."""
    if type(value) is str:
        return value.replace("\n", _ARG_NL)
    if type(value) is tuple:
        return tuple(_arg(v) for v in value)
    return value


def _has_newline(value) -> bool:
    if type(value) is str:
        return "\n" in value
    return type(value) is tuple and any(_has_newline(v) for v in value)


def render(e: ev.Event, pid: int) -> str:
    if any(_has_newline(v) for v in e):
        e = type(e)(*[_arg(v) for v in e])
    text = message(e)
    return "" if text is None else debug_lines(text, pid)


def help_text() -> str:
    lines = ["Valid options for the LD_DEBUG environment variable are:", ""]
    lines += [f"  {name:<12}{text}" for name, _, text in DEBUG_OPTIONS]
    lines += ["", "To direct the debugging output into a file instead of standard output",
              "a filename can be specified using the LD_DEBUG_OUTPUT environment variable."]
    return "\n".join(lines) + "\n"
