"""Renderers of a scan: a summary and a findings table (tabulate), JSON, and the input-error lines.
Pure functions from a ScanResult to lines; the CLI writes them."""

from __future__ import annotations

import json
from collections import Counter

from ldsim.scan import ProblemKind, ScanResult


def input_lines(res: ScanResult) -> list[str]:
    """One `ldsim: FILE: reason` line per file that could not be read or understood (for stderr)."""
    return [f"ldsim: {f.file}: {f.detail}\n" for f in res.findings if f.kind is ProblemKind.BAD_FILE]


def summary_lines(res: ScanResult) -> list[str]:
    s = res.stats
    counts = Counter(f.kind for f in res.findings)
    lines = [f"scanned {s.programs} programs and {s.libraries} libraries under {res.root} "
             f"({s.elf_files} ELF files; {s.static} static, {s.foreign} of another class or machine, "
             f"{s.other_elf} other, {s.duplicates} duplicate links)\n"]
    if not res.symbols_checked:
        lines.append("undefined symbols under immediate binding: not checked\n")
    if not counts:
        lines.append("no problems found\n")
        return lines
    from tabulate import tabulate
    rows = [(k.value, k.group, counts[k]) for k in ProblemKind if counts[k]]
    lines += [ln + "\n" for ln in tabulate(rows, headers=("problem", "group", "count")).splitlines()]
    return lines


def table_lines(res: ScanResult) -> list[str]:
    rows = [(f.file, f.kind.value, f.subject, (f"via {f.via}: " if f.via else "") + f.detail)
            for f in res.findings if f.kind is not ProblemKind.BAD_FILE]
    if not rows:
        return []
    from tabulate import tabulate
    # Number parsing only matters for a column whose every value reads as a number; finding one that
    # does not is cheap, tabulate's per-cell parsing of thousands of rows is not
    numparse = any(all(_number(row[i]) for row in rows) for i in range(4))
    return [ln + "\n" for ln in tabulate(rows, headers=("file", "problem", "subject", "detail"),
                                          disable_numparse=not numparse).splitlines()]


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def text_lines(res: ScanResult) -> list[str]:
    table = table_lines(res)
    return table + (["\n"] if table else []) + summary_lines(res)


def json_text(res: ScanResult) -> str:
    s = res.stats
    doc = {
        "root": res.root,
        "stats": vars(s),
        "symbols_checked": res.symbols_checked,
        "summary": {k.value: n for k, n in Counter(f.kind for f in res.findings).items()},
        "findings": [{"file": f.file, "kind": f.kind.value, "group": f.kind.group, "subject": f.subject,
                      "detail": f.detail, "via": f.via or None, **({"status": f.status} if f.status is not None else {})}
                     for f in res.findings],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
