# SPDX-License-Identifier: GPL-2.0-only
"""``/sys/kernel/debug/memblock/{memory,reserved}`` dumps into DebugfsTable observations.

Both generations of the file are read:

* up to v6.4: ``%4d: %pa..%pa`` (no node, no flags; such rows carry
  ``flags = -1`` and ``nid = None``, "not printed");
* since v6.5 (493f349e38d0 "memblock: Add flags and nid info in memblock
  debugfs"): ``%4d: %pa..%pa %4d %s`` with ``x`` for an invalid node and the
  flag names (the lowest only in 6.5, all joined by ``|`` in 7.x).

The end printed is inclusive; regions here are ``[base, base + size)``.  A
directory holding ``memory`` and ``reserved`` (or, as our fixtures name them,
``memblock-memory.txt`` and ``memblock-reserved.txt``) is one input.

>>> parse_debugfs_lines([(1, "   0: 0x0000000040000000..0x000000013fffffff    0 NONE")])
([Region(base=1073741824, size=4294967296, flags=0, nid=0)], [])
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from kho_replay.replay.errors import FormatError
from kho_replay.replay.flags import parse_flags
from kho_replay.replay.ops import Context, DebugfsTable, Region, Skipped, Src, Trace

__all__ = ["DEBUGFS_FILES", "DEBUGFS_LINE", "parse_debugfs_lines", "read_debugfs"]

#: Table name -> file names that hold it, kernel's first.
DEBUGFS_FILES: dict[str, tuple[str, ...]] = {
    "memory": ("memory", "memblock-memory.txt"),
    "reserved": ("reserved", "memblock-reserved.txt"),
    "physmem": ("physmem", "memblock-physmem.txt"),
}

DEBUGFS_LINE = re.compile(
    r"^\s*(?P<idx>\d+): (?P<base>0x[0-9a-fA-F]+)\.\.(?P<end>0x[0-9a-fA-F]+)"
    r"(?:\s+(?P<nid>-?\d+|x)\s+(?P<flags>[A-Z_|]+))?\s*$"
)
_MASK = (1 << 64) - 1


def parse_debugfs_lines(
    lines: Iterable[tuple[int, str]],
) -> tuple[list[Region], list[tuple[int, str, str]]]:
    """Parse numbered debugfs rows; return (regions, [(lineno, text, why) not understood]).

    ``UNKNOWN`` (a bit without a name) keeps flags -1: the value was not printed.
    """
    regions: list[Region] = []
    bad: list[tuple[int, str, str]] = []
    for lineno, text in lines:
        if not text.strip():
            continue
        m = DEBUGFS_LINE.match(text)
        if not m:
            bad.append((lineno, text, "not a memblock debugfs row"))
            continue
        if int(m.group("idx")) != len(regions):
            bad.append((lineno, text, f"row {m.group('idx')} out of sequence (expected {len(regions)})"))
            continue
        base = int(m.group("base"), 16)
        size = (int(m.group("end"), 16) + 1 - base) & _MASK
        nid: int | None = None
        flags = -1
        if m.group("nid") is not None:
            nid = None if m.group("nid") == "x" else int(m.group("nid"))
            names = m.group("flags")
            if names != "UNKNOWN":
                try:
                    flags = int(parse_flags(names.replace("NONE", "none")))
                except ValueError as e:
                    bad.append((lineno, text, str(e)))
                    continue
        regions.append(Region(base, size, flags, nid))  # type: ignore[arg-type]
    return regions, bad


def _files(path: Path) -> list[tuple[str, Path]]:
    if path.is_dir():
        found = []
        for name, candidates in DEBUGFS_FILES.items():
            for c in candidates:
                if (path / c).is_file():
                    found.append((name, path / c))
                    break
        return found
    stem = path.name.removesuffix(".txt").removeprefix("memblock-")
    return [(stem if stem in DEBUGFS_FILES else "memory", path)]


def read_debugfs(path: str | Path, *, strict: bool = False) -> Trace:
    """Read a memblock debugfs file, or a directory of them, into a Trace of DebugfsTable observations.

    :raises FormatError: when no file holds a debugfs row, or in strict mode on a bad row.
    """
    from . import read_text

    p = Path(path)
    files = _files(p)
    if not files:
        raise FormatError(str(p), "no memblock debugfs files (memory, reserved) in this directory")
    obs: list[DebugfsTable] = []
    skipped: list[Skipped] = []
    for name, f in files:
        text = read_text(f)
        regions, bad = parse_debugfs_lines(enumerate(text.splitlines(), 1))
        for lineno, raw, why in bad:
            if strict:
                raise FormatError(str(f), why, line=lineno)
            skipped.append(Skipped(str(f), str(lineno), why, raw))
        if not regions and bad:
            raise FormatError(str(f), f"not a memblock debugfs table: {bad[0][2]}", line=bad[0][0])
        obs.append(DebugfsTable(at=0, src=Src(str(f), 1), name=name, regions=tuple(regions)))
    return Trace(Context(source=str(p)), (), tuple(obs), tuple(skipped))
