# SPDX-License-Identifier: GPL-2.0-only
"""What-ifs beyond the design: the kernel image in another KASLR slot, other boot parameters, sweeps.

A what-if changes the trace before replay, never the engine; each changed op
says why in its ``inferred`` reason.

>>> from kho_replay.replay.ops import Context, Trace, parse_script
>>> t = Trace(Context(cmdline="hugepagesz=1G hugepages=2", release="7.2.13"), parse_script('''
... reserve_kern 0x100000000 46M
... reserve 0x102e00000 68K flags=rsrv_kern caller=setup_arch+0xb81/0xcd0
... add 0x100000 0xbff00000
... add 0x100000000 4G
... '''))
>>> w = whatif(t, image_at=0x181000000, sets=[("hugepages", "4")])
>>> w.context.cmdline
'hugepagesz=1G hugepages=4'
>>> hex(w.ops[1].base), w.ops[1].inferred
('0x183e00000', 'what-if: kernel image at 0x181000000 (was 0x100000000)')
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ops import Trace
from .image import KernelImage, check_slot, find_image, move_image
from .kaslr import SlotArea, all_slots, sample_slots, slot_areas, trace_slots
from .params import apply_sets, check_param, set_cmdline
from .sweep import Point, Row, SweepResult, replay, run_point, summary, sweep

__all__ = [
    "KernelImage",
    "Point",
    "Row",
    "SlotArea",
    "SweepResult",
    "all_slots",
    "apply_sets",
    "check_param",
    "check_slot",
    "find_image",
    "move_image",
    "replay",
    "run_point",
    "sample_slots",
    "set_cmdline",
    "slot_areas",
    "summary",
    "sweep",
    "trace_slots",
    "whatif",
]


def whatif(trace: Trace, *, image_at: int | None = None, sets: Sequence[tuple[str, str]] = ()) -> Trace:
    """*trace* with boot parameters *sets* applied, then the kernel image moved to *image_at*.

    The image address is checked against the KASLR slots under the new
    parameters (``hugepages=`` keeps 1 GiB blocks free of the image).

    :raises KhoReplayError: for a bad parameter or an address the decompressor could not choose.
    """
    t = apply_sets(trace, sets)
    return move_image(t, image_at) if image_at is not None else t
