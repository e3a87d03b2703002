# SPDX-License-Identifier: GPL-2.0-only
"""trace-cmd ``trace.dat`` files (v6 and v7; none, zstd or zlib compression).

>>> with open_tracedat("traces/tracedat/synthetic/v7zstd.dat") as td:
...     ev = next(e for e in td.iter_events() if e.name == "console")
>>> ev.ts, ev.cpu, ev.pid, ev.get("msg")[:16]
(1000003039, 1, 42, 'memblock_reserve')

Layout: ``structs.py`` (construct layouts only), ``reader.py`` (container walk
and ring-buffer pages), ``events.py`` (formats and record decoding),
``render.py`` (``trace-cmd report`` text), ``symbols.py`` (kallsyms,
printk_formats, saved_cmdlines), ``extract.py`` (memblock activity into a
Trace: :func:`read_tracedat`), ``writer.py`` and ``record.py`` (``kho-replay
record``).
"""

from __future__ import annotations

import os

from .events import ConsoleLine, Event, EventDecoder, EventFormat, Field, FieldKind, iter_console
from .extract import read_tracedat
from .reader import Buffer, CpuData, HeaderPage, Option, Record, TraceDat

__all__ = [
    "Buffer",
    "ConsoleLine",
    "CpuData",
    "Event",
    "EventDecoder",
    "EventFormat",
    "Field",
    "FieldKind",
    "HeaderPage",
    "Option",
    "Record",
    "TraceDat",
    "iter_console",
    "open_tracedat",
    "read_tracedat",
]


def open_tracedat(path: str | os.PathLike[str]) -> TraceDat:
    """Open a trace.dat lazily: header, options and metadata index only.

    Models trace-cmd's ``tracecmd_open()``.

    :raises FormatError: the file is not a trace.dat or is garbled.
    :raises TruncatedError: the file ends inside its header or metadata.
    :raises UnsupportedError: a version above 7 or an unknown compression.
    """
    return TraceDat(path)
