"""The CPU as the loader sees it (glibc-loader.md §3.5, §3.9 end, §9) against the real loader.

* glibc-hwcaps/x86-64-v2, -v3 (and -v4) subdirectories: ldsim with the host CPU equals the real loader;
  `--glibc-hwcaps-mask` / `--glibc-hwcaps-prepend` equal the real options.
* `--cpu LEVEL` is checked through an equivalence the real loader can show on this host: a CPU of level
  L searches exactly what the host searches with `--glibc-hwcaps-mask` set to the levels up to L (and a
  level above the host's is what `--glibc-hwcaps-prepend` of the missing names gives).  Valid when the
  host's AT_PLATFORM is plain x86_64 (not Intel's haswell/xeon_phi override), else skipped.
* `ld.so --help` byte for byte, with options, environment and a program.
* The x86 ISA level check after loading: `PATH: CPU ISA level is lower than required`.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from ldsim.hwcaps import cpu_for_level, detect_host_cpu
from ldsim.materialize import LibSpec, ProgSpec, WorldSpec, build_world
from tests import oracle
from tests.conformance.conftest import TRACE_ENV, assert_same

pytestmark = pytest.mark.conformance

LEVELS = ("x86-64-v2", "x86-64-v3", "x86-64-v4")  # ascending
HOST = detect_host_cpu()
HOST_LEVEL = HOST.level_name


def lib(path: str, **kw) -> LibSpec:
    kw.setdefault("libc", False)
    return LibSpec(path, soname=os.path.basename(path), **kw)


def world() -> WorldSpec:
    objs = [ProgSpec("bin/m", needed=("libh1.so", "libh2.so", "libh3.so"), rpath="$ORIGIN/../D"),
            ProgSpec("bin/mu", needed=("libh1.so",), runpath="$ORIGIN/../D:$ORIGIN/../E"),
            lib("D/libh1.so"), lib("D/libh2.so"), lib("D/libh3.so"),
            lib("D/glibc-hwcaps/x86-64-v2/libh2.so"), lib("D/glibc-hwcaps/x86-64-v4/libh3.so"),
            lib("D/glibc-hwcaps/foo/libh1.so"),
            # the ISA level marker: found and mapped, then refused before relocation
            ProgSpec("bin/misa", needed=("libv4.so", "libv2.so"), rpath="$ORIGIN/../I"),
            ProgSpec("bin/misa_main", needed=("libv2.so",), rpath="$ORIGIN/../I", cflags=("-Wl,-z,x86-64-v4",)),
            ProgSpec("bin/misa3", needed=("libv3.so",), rpath="$ORIGIN/../I"),
            lib("I/libv4.so", cflags=("-Wl,-z,x86-64-v4",)), lib("I/libv2.so", cflags=("-Wl,-z,x86-64-v2",)),
            lib("I/libv3.so", cflags=("-Wl,-z,x86-64-v3",))]
    objs += [lib(f"D/glibc-hwcaps/{lv}/libh1.so") for lv in LEVELS]
    return WorldSpec(tuple(objs))


def _real(args: list[str], env: dict[str, str], cwd: str) -> oracle.Outcome:
    return oracle.real_ldso(args, env, cwd)


def _sim(args: list[str], env: dict[str, str], cwd: str, own: tuple[str, ...] = ()) -> oracle.Outcome:
    eargs = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    return oracle.run([sys.executable, "-m", "ldsim", "ld.so", "-i", *own, *eargs, *args], oracle._own_env(), cwd)


def _levels_up_to(level: str) -> list[str]:
    return list(LEVELS[:LEVELS.index(level) + 1]) if level in LEVELS else []


def cpu_equivalences() -> list[tuple[str, list[str]]]:
    """(ldsim --cpu LEVEL, real ld.so options giving the same search) for every level."""
    out = []
    host_levels = _levels_up_to(HOST_LEVEL)
    for level in ("baseline", *LEVELS):
        want = _levels_up_to(level)
        if set(want) <= set(host_levels):
            opts = ["--glibc-hwcaps-mask", ":".join(want)]
        else:  # above the host: the missing names prepended, best first, then the host's own
            extra = [lv for lv in reversed(want) if lv not in host_levels]
            opts = ["--glibc-hwcaps-prepend", ":".join(extra)]
        out.append((level, opts))
    return out


# (name, ld.so args with {w}, env, ldsim's own options: with --cpu the real side's first two args are
# the equivalent hwcaps options, which ldsim does not get)
TRACE = dict(TRACE_ENV)
CASES: list[tuple[str, list[str], dict[str, str], tuple[str, ...]]] = [
    ("host-trace", ["{w}/bin/m"], TRACE, ()),
    ("host-exec", ["{w}/bin/m"], {"LD_DEBUG": "libs"}, ()),
    ("host-llp", ["{w}/bin/mu"], {**TRACE, "LD_LIBRARY_PATH": "{w}/D"}, ()),
    ("mask-v2", ["--glibc-hwcaps-mask", "x86-64-v2", "{w}/bin/m"], TRACE, ()),
    ("mask-empty", ["--glibc-hwcaps-mask", "", "{w}/bin/m"], TRACE, ()),
    ("mask-unknown", ["--glibc-hwcaps-mask", "x86-64-v9:foo", "{w}/bin/m"], TRACE, ()),
    ("prepend", ["--glibc-hwcaps-prepend", "foo::x86-64-v4", "{w}/bin/m"], TRACE, ()),
    ("prepend-and-mask", ["--glibc-hwcaps-prepend", "foo", "--glibc-hwcaps-mask", "x86-64-v2",
                          "{w}/bin/m"], {"LD_DEBUG": "libs"}, ()),
    ("hwcap-mask-env", ["{w}/bin/m"], {**TRACE, "LD_HWCAP_MASK": "0"}, ()),
    ("help", ["--help"], {}, ()),
    ("help-options", ["--glibc-hwcaps-prepend", "foo:bar", "--glibc-hwcaps-mask", "x86-64-v3", "--help"], {}, ()),
    ("help-mask-empty", ["--glibc-hwcaps-mask", "", "--help"], {"LD_HWCAP_MASK": "2"}, ()),
    ("help-program-rpath", ["--library-path", "/x:{w}/D/:/lib/x86_64-linux-gnu", "--help", "{w}/bin/m"],
     {"LD_LIBRARY_PATH": "/ignored"}, ()),
    ("help-program-runpath", ["--help", "bin/mu"], {"LD_LIBRARY_PATH": "::$ORIGIN/../E:/y/"}, ()),
    ("help-missing-program", ["--help", "{w}/nonexistent"], {"LD_HWCAP_MASK": "0"}, ()),
    # no program: ld.so's own map stands in, its $ORIGIN the directory of /proc/self/exe (the loader's file)
    ("help-origin", ["--help"], {"LD_LIBRARY_PATH": "$ORIGIN/x:${ORIGIN}/../y:$LIB"}, ()),
    ("help-program-debug", ["--help", "{w}/bin/m"], {"LD_DEBUG": "files"}, ()),
    ("isa-lib", ["{w}/bin/misa"], {"LD_DEBUG": "libs"}, ()),
    ("isa-main", ["{w}/bin/misa_main"], {}, ()),
    ("isa-trace-not-checked", ["{w}/bin/misa"], TRACE, ()),
    ("isa-argv0", ["--argv0", "renamed", "{w}/bin/misa_main"], {}, ()),
    # GLIBC_TUNABLES: glibc.cpu.hwcaps disables features after isa_1 is computed (the subdirectories,
    # AT_PLATFORM and dl_hwcap change; the ISA level check does not); glibc.cpu.hwcap_mask and its alias
    ("tunable-avx2", ["{w}/bin/m"], {**TRACE, "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}, ()),
    ("tunable-sse42-exec", ["{w}/bin/m"], {"LD_DEBUG": "libs", "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-SSE4_2"}, ()),
    ("tunable-xsave", ["{w}/bin/m"], {**TRACE, "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-XSAVE,-XSAVEC"}, ()),
    ("tunable-not-disabling", ["{w}/bin/m"], {**TRACE, "GLIBC_TUNABLES": "glibc.cpu.hwcaps=avx2,AVX2,-avx2,-XSAVE"}, ()),
    ("tunable-isa-check", ["{w}/bin/misa3"], {"LD_DEBUG": "libs", "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}, ()),
    ("tunable-mask-then-alias", ["{w}/bin/m"], {**TRACE, "GLIBC_TUNABLES": "glibc.cpu.hwcap_mask=0",
                                                "LD_HWCAP_MASK": "2"}, ()),
    ("tunable-alias-then-mask", ["{w}/bin/m"], {**TRACE, "LD_HWCAP_MASK": "0",
                                                "GLIBC_TUNABLES": "glibc.cpu.hwcap_mask=0x2"}, ()),
    ("tunable-garbage", ["{w}/bin/m"], {**TRACE, "GLIBC_TUNABLES": ":=:glibc.cpu.hwcaps:x=1:glibc.cpu.hwcap_mask"
                                        "=zz:glibc.cpu.hwcaps=-AVX2::glibc.rtld.dynamic_sort=7:glibc.cpu.hwcaps"}, ()),
    ("tunable-sse2", ["{w}/bin/m"], {**TRACE, "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-SSE2"}, ()),
    ("help-tunables", ["--help"], {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-SSSE3:glibc.cpu.hwcap_mask=-1"}, ()),
    ("help-hwcap-mask-negative", ["--help"], {"LD_HWCAP_MASK": "-1"}, ()),
    ("trace-program-value", ["{w}/bin/m"], {"LD_TRACE_LOADED_OBJECTS": "-1"}, ()),
    # --list leaves mode_trace_program as the stack had it: set after the glibc.cpu.hwcaps callback
    ("list-tunable-hwcaps", ["--list", "{w}/bin/m"], {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}, ()),
    ("list-tunable-hwcaps-empty", ["--list", "{w}/bin/m"], {"GLIBC_TUNABLES": "glibc.malloc.check=1:glibc.cpu.hwcaps="},
     ()),
    ("list-tunable-hwcaps-no-value", ["--list", "{w}/bin/m"], {"GLIBC_TUNABLES": "glibc.cpu.hwcaps"}, ()),
    ("list-tunable-other", ["--list", "{w}/bin/m"], {"GLIBC_TUNABLES": "glibc.cpu.hwcap_mask=0"}, ()),
    ("list-tunable-hwcaps-trace-env", ["--list", "{w}/bin/m"],
     {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-SSE4_2", "LD_TRACE_LOADED_OBJECTS": "1"}, ()),
    ("list-tunable-hwcaps-debug", ["--list", "{w}/bin/m"], {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=x", "LD_DEBUG": "libs"},
     ()),
]
for _level, _opts in cpu_equivalences():
    CASES.append((f"cpu-{_level}", [*_opts, "{w}/bin/m"], TRACE, ("--cpu", _level)))
    CASES.append((f"cpu-{_level}-exec", [*_opts, "{w}/bin/m"], {"LD_DEBUG": "libs"}, ("--cpu", _level)))


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, tuple[oracle.Outcome, oracle.Outcome]]:
    w = str(tmp_path_factory.mktemp("hwcaps"))
    build_world(world(), w, jobs=4)

    def one(case):
        name, args, env, own = case
        args = [a.replace("{w}", w) for a in args]
        env = {k: v.replace("{w}", w) for k, v in env.items()}
        real = _real(args, env, w)
        # an ldsim --cpu run is compared with the real loader's equivalent options, minus those options
        sim_args = args[2:] if own else args
        return name, (real, _sim(sim_args, env, w, own))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, CASES))


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_hwcaps(results, name: str) -> None:
    if name.startswith("cpu-") and not (HOST.platform == "x86_64" and HOST.hwcap == cpu_for_level("baseline").hwcap):
        pytest.skip(f"host AT_PLATFORM {HOST.platform} / hwcap {HOST.hwcap:#x}: --cpu models a plain x86_64")
    assert_same(*results[name])


def test_cpu_v4_passes_the_isa_check(tmp_path) -> None:
    """ldsim only: with --cpu x86-64-v4 the v4-marked library is accepted (no real v4 CPU needed)."""
    build_world(WorldSpec((ProgSpec("bin/m", needed=("libv4.so",), rpath="$ORIGIN/../I"),
                           lib("I/libv4.so", cflags=("-Wl,-z,x86-64-v4",)))), str(tmp_path))
    ok = _sim([f"{tmp_path}/bin/m"], {}, str(tmp_path), ("--cpu", "x86-64-v4"))
    low = _sim([f"{tmp_path}/bin/m"], {}, str(tmp_path), ("--cpu", "x86-64-v3"))
    assert (ok.status, ok.stderr) == (0, b"")
    assert low.status == 127
    assert low.stderr == f"{tmp_path}/bin/../I/libv4.so: CPU ISA level is lower than required\n".encode()
