# SPDX-License-Identifier: GPL-2.0-only
"""The one model a trace runs on, for every command: profile and arch from the trace, KHO ops wired in.

:func:`memblock_for` builds the :class:`~..memblock.engine.Memblock` of a trace
(``run``, ``kho``, ``validate``, ``diff`` and the default command all call it),
so an op script or a log is the same kernel whatever reads it.  It registers
the ops of KHO's own boot code (7.3 ``kho_memory_init_early()``: the
``kho_scratch_area`` and ``kho_extend_scratch`` ops) with the code the
synthesized KHO boot runs (:func:`.scratch.set_scratch_area`,
:func:`.preserve.mark_free_runs`).  :func:`kernel_strategy` makes ``baseline``
the trace's kernel: its gigantic-page API, scratch sizing and extension.

>>> from kho_replay.replay.ops import Context, Trace, parse_script
>>> t = Trace(Context(release="7.3.4"), parse_script('''
... add 0x0 8G
... kho_scratch_area 0x200000000 256M
... kho_extend_scratch 0x100000000
... '''))
>>> mb = memblock_for(t)
>>> _ = mb.run(t.ops)
>>> [(hex(r.base), hex(r.end), int(r.flags)) for r in mb.memory]
[('0x0', '0x100000000', 64), ('0x100000000', '0x140000000', 0), ('0x140000000', '0x200000000', 64)]
>>> mb.kho_scratch_overlap(0x200000000, 4096)
True
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..flags import Flag
from ..memblock.engine import Memblock
from ..ops import KhoExtendScratch, KhoScratchArea, Op, Trace
from ..profile import Profile, arch_for, profile_or_oldest

# The KHO code and the designs load with the first KHO op or design: `kho-replay run` of a plain
# script needs neither.
if TYPE_CHECKING:
    from ..strategies import Strategy

__all__ = ["DEFAULT_KERNEL", "kernel_strategy", "memblock_for"]

#: The kernel an op script or a log without a ``Linux version`` line is taken for.
DEFAULT_KERNEL = "7.3"


def _scratch_area(mb: Memblock, op: Op) -> None:
    from .scratch import set_scratch_area

    assert isinstance(op, KhoScratchArea)
    set_scratch_area(mb, op.base, op.size)


def _extend_scratch(mb: Memblock, op: Op) -> None:
    from .preserve import KHO_SCRATCH_EXT_BLKSIZE, mark_free_runs

    assert isinstance(op, KhoExtendScratch)
    mark_free_runs(mb, [b // KHO_SCRATCH_EXT_BLKSIZE for b in op.busy], Flag.MEMBLOCK_KHO_SCRATCH)


#: The KHO ops a model executes, by type.
KHO_OPS = {KhoScratchArea: _scratch_area, KhoExtendScratch: _extend_scratch}


def memblock_for(trace: Trace, *, kernel: str | None = None, arch: str | None = None) -> Memblock:
    """A fresh model for *trace*: *kernel*/*arch* when given, else the trace's, else :data:`DEFAULT_KERNEL`.

    A release older than every profile runs on the oldest (the parser's warning says so); memblock
    starts in the direction the arch's boot code leaves it (a generic arch may allocate bottom-up).
    """
    ctx = trace.context
    mb = Memblock(profile_or_oldest(kernel or ctx.release or DEFAULT_KERNEL)[0], arch_for(arch or ctx.arch or "x86_64"))
    mb.bottom_up = mb.arch.bottom_up
    mb.op_handlers.update(KHO_OPS)
    return mb


def kernel_strategy(strategy: Strategy, profile: Profile) -> Strategy:
    """``baseline`` is what the trace's kernel does: take its hugetlb and KHO behaviours from *profile*.

    Other designs set their own knobs and are returned unchanged.
    """
    from ..strategies.base import EXCLUDE_HUGETLB

    if strategy.name != "baseline":
        return strategy
    sizing = not profile.scratch_sizing_subtracts_hugetlb and EXCLUDE_HUGETLB[0] not in strategy.options
    return replace(
        strategy,
        gigantic_api="hugetlb" if profile.gigantic_api == "hugetlb" else strategy.gigantic_api,
        hugetlb_in_scratch_sizing=sizing,
        extension="scratch" if profile.kho_boot_extends_scratch else strategy.extension,
    )
