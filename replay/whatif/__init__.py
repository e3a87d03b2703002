# SPDX-License-Identifier: GPL-2.0-only
"""What-ifs beyond the design: the kernel image in another KASLR slot, other boot parameters, sweeps.

A what-if changes the trace before replay, never the engine; each changed op
says why in its ``inferred`` reason.
"""

from .image import KernelImage, find_image, move_image
from .kaslr import SlotArea, all_slots, sample_slots, slot_areas, trace_slots

__all__ = [
    "KernelImage",
    "SlotArea",
    "all_slots",
    "find_image",
    "move_image",
    "sample_slots",
    "slot_areas",
    "trace_slots",
]
