# SPDX-License-Identifier: GPL-2.0-only
"""Stop a replay before any op and look at the tables, as one does with drgn at a breakpoint.

An op is named by its index in the trace (``17``), by the log line it came
from (``:1234``: the first op read at or after that line), or by the
function that made it (``sparse_init_nid``: its first op).

>>> from kho_replay.replay.ops import parse_script
>>> from kho_replay.replay.ops import Context, Trace
>>> t = Trace(Context(source="x"), parse_script("add 0x0 0x10000000\\nreserve 0x1000 0x1000 caller=f+0x1/0x2\\n", "x"))
>>> stop_index(t, "f"), stop_index(t, "1"), len(model_before(t, 1).reserved)
(1, 1, 0)
"""

from __future__ import annotations

from .errors import KhoReplayError
from .kho.model import memblock_for
from .memblock.engine import Memblock
from .ops import Trace

__all__ = ["model_before", "stop_index"]


def stop_index(t: Trace, spec: str) -> int:
    """The index of the op *spec* names (see the module docstring).

    :raises KhoReplayError: when no op matches.
    """
    if spec.lstrip("-").isdigit():
        i = int(spec)
        if not 0 <= i <= len(t.ops):
            raise KhoReplayError(f"--stop-at {spec}: the trace has ops 0..{len(t.ops) - 1}")
        return i
    if spec.startswith(":") and spec[1:].isdigit():
        line = int(spec[1:])
        for i, op in enumerate(t.ops):
            if op.src is not None and op.src.line is not None and op.src.line >= line:
                return i
        raise KhoReplayError(f"--stop-at {spec}: no op at or after line {line}")
    for i, op in enumerate(t.ops):
        if (op.caller or "").split("+", 1)[0] == spec:
            return i
    raise KhoReplayError(f"--stop-at {spec}: no op called from {spec} (give an op index, :LINE or a function)")


def model_before(t: Trace, at: int) -> Memblock:
    """The model after replaying ops 0 .. *at* - 1 of *t*: the tables as op *at* finds them."""
    mb = memblock_for(t)
    mb.run(t.ops[:at])
    return mb
