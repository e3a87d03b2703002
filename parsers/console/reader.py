# SPDX-License-Identifier: GPL-2.0-only
"""Kernel console text with ``memblock=debug`` into a :class:`~kho_replay.replay.ops.Trace`.

What it reads: ``dmesg``, ``dmesg -T``, ``dmesg -x``, ``journalctl -k`` and raw
serial captures (firmware noise, terminal escapes, CRLF), with or without
``[    0.000000]`` timestamps and ``[T0]``/``[C1]`` caller ids.  Every line the
kernel's ``memblock_dbg()`` printed since 4.x becomes an op; the lines an
allocation prints are folded into one :class:`Alloc` with the recorded result;
``MEMBLOCK configuration:`` dumps, ``... is doubled to ...`` and the context
lines (``Linux version``, command line, NUMA layout, ``KHO:``, ``HugeTLB:``,
``Memory:``) become context facts and observations.

What the log does not show is inferred, each op marked with its reason:

* the state memblock held before ``memblock=debug`` was parsed is seeded from
  the first ``MEMBLOCK configuration:`` dump (regions no logged line explains,
  KHO scratch areas inherited by a KHO-booted kernel);
* calls that print nothing (``memblock_set_current_limit``,
  ``memblock_set_bottom_up``, ``memblock_set_node``, ``memblock_allow_resize``,
  ``memblock_trim_memory``, ``memblock_mark/clear_kho_scratch``, scratch-only
  on/off) come from per-arch boot knowledge keyed on the lines around them;
* allocations that print only their reservation line
  (``memblock_phys_alloc_try_nid()``, CMA's and KHO's direct
  ``memblock_alloc_range_nid()`` calls) are rebuilt from their caller.

Lines that look like memblock output but are not understood become
:class:`Skipped` records; ``strict=True`` turns the first into an error.

>>> from pathlib import Path
>>> t = read_console(Path(__file__).parents[2] / "traces/x86_64-debian-7.2.13-4G/console.log")
>>> t.context.release, t.context.arch
('7.2.13+deb14-amd64', 'x86_64')
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import Any, ClassVar

from kho_replay.replay.errors import FormatError, KhoReplayError, TruncatedError, UnsupportedError
from kho_replay.replay.flags import Flag
from kho_replay.replay.ops import (
    FAILED,
    NUMA_NO_NODE,
    Add,
    Alloc,
    Context,
    DebugfsTable,
    Doubling,
    Free,
    KernelMessage,
    KhoScratchOnly,
    Mark,
    MemblockDump,
    NodeRanges,
    Observation,
    Op,
    Phase,
    Region,
    Remove,
    Reserve,
    SetCurrentLimit,
    SetNode,
    Skipped,
    Src,
    Trace,
    TrimMemory,
    ZoneRanges,
    caller_function,
    fast_new,
)
from kho_replay.replay.profile import Profile, arch_for, profile_for

from .. import TextFile
from ..debugfs import DEBUGFS_LINE, parse_debugfs_lines, split_tables, table_hint
from .capture import drop_repeats, iter_live_lines, live_lines
from .generic import ArchState, generic_arch_state
from .grammar import (
    ALLOC_NID_LINE,
    ALLOC_RESERVE_CALLERS,
    ARCH_HINTS,
    CMA_LINE,
    CMA_MULTI_LINE,
    CMDLINE_LINE,
    COMPLETE_END,
    DOUBLE_CALLER,
    DOUBLE_FAILED_LINE,
    DOUBLED_LINE,
    DUMP_CNT,
    DUMP_HEAD,
    DUMP_REGION,
    DUMP_SIZES,
    E820_LINE,
    ERAS,
    FAKE_NODE_LINE,
    FREEING_LINE,
    HUGETLB_ALLOC_LINE,
    HUGETLB_BOOTMEM_CALLERS,
    HUGETLB_LINE,
    INITMEM_LINE,
    KHO_LINE,
    MEMBLOCKISH,
    MEMORY_LINE,
    MIRROR_FAIL_LINE,
    NID_RANGE_LINE,
    NO_NUMA_LINE,
    NODE_DATA_LINE,
    NODE_RANGE_ITEM,
    NODE_RANGES_HEAD,
    NUMA_MERGE_LINE,
    PAGE_SIZE,
    PHYS_ALLOC_LINE,
    PHYS_MASK,
    RANGE_LINE,
    RELEVANT,
    RESIZE_PANIC_LINE,
    SECTION_BEGIN,
    SECTION_END,
    SRAT_LINE,
    SZ_1M,
    VERSION_LINE,
    WRAPPED_START,
    ZONE_ANY_LINE,
    ZONE_LINE,
    ZONE_RANGES_HEAD,
    Era,
    era_for,
    infer_release,
    range_of,
    why_not_understood,
)
from .infer import AFTER_CALLERS, HiddenOps, _may_hide
from .prefixes import (
    BlankCuts,
    CallRun,
    Line,
    PlainRun,
    call_line,
    clean_line,
    excerpt_lines,
    iter_excerpt_lines,
    unquote,
)
from .split import Boots, crop, scan

__all__ = ["ConsoleReader", "boot_lines", "count_boots", "count_boots_file", "read_console", "read_console_file",
           "read_console_text"]

# --------------------------------------------------------------------------
# The reader


@dataclass
class _Dump:
    """A ``MEMBLOCK configuration:`` dump being read."""

    lineno: int
    ts: float | None
    head: Line
    sizes: tuple[int, int] | None = None
    cnt: dict[str, int] = field(default_factory=dict)
    regions: dict[str, list[Region]] = field(default_factory=dict)

    def complete(self) -> bool:
        return (
            self.sizes is not None
            and all(t in self.cnt for t in ("memory", "reserved"))
            and all(len(self.regions.get(t, [])) >= n for t, n in self.cnt.items())
        )


class ConsoleReader(HiddenOps):
    """Reads one boot's console text into a Trace.

    :param path: the file name used in positions and errors.
    :param lines: the file's lines (decoded text).
    :param strict: raise on the first memblock-looking line we do not understand.
    :param boot: which boot of a combined log (1-based, -1 the last); None: the log must hold one.
    """

    def __init__(self, path: str, lines: Sequence[str], *, strict: bool = False, boot: int | None = None,
                 kernel: str | None = None, arch: str | None = None) -> None:
        self.path = path
        #: ``--kernel``/``--arch``: the user's word beats the log's.
        self.kernel = kernel
        self.arch_override = arch
        #: what was assumed because the log does not say (one warning line, see parsers.load()).
        self.assumed: list[str] = []
        self.strict = strict
        self.raw_lines = lines
        #: the capture's text, read as it is split (see :func:`read_console_text`): each call gives
        #: it afresh, a piece at a time
        self.source: Callable[[], Iterable[str]] | None = None
        #: where the source's boots are, when it holds several (see :mod:`.split`)
        self.boots: Boots | None = None
        self.source_key: Hashable = None
        self.boot = boot
        self.lines: list[Line] = []
        #: the lines were cleaned already, and only those the walk reads kept (:func:`count_boots` of
        #: the same text may have done it)
        self.cleaned = False
        self.kept = False
        #: each kept line's index among all the boot's lines (look-aheads count every line)
        self.pos: Sequence[int] = []
        #: the boot's last line and how many lines it has, kept or not
        self.last: Line | None = None
        self.line_count = 0
        #: the boot's first lines (the arch hints are searched there)
        self.head: list[Line] = []
        #: where the kept lines of each CallRun start (index in lines) -> how many they are: the walk reads
        #: such a run's fields with one regex (_call_block), the scans before it pass over its lines
        self.blocks: dict[int, int] = {}
        #: ... and the run there: it stands in lines for each of its lines until _kept() makes them
        self.runs: dict[int, CallRun] = {}
        self._run_starts: list[int] | None = None
        #: :attr:`source` can be read again (call runs then hold their place in it, not their text)
        self.rereadable = True
        #: (not rereadable) the source's chunks are held, compressed, as they are read: call runs hold their
        #: place in them, not their text (:class:`_Chunks` without *again*)
        self.hold = False
        #: the ops made and not handed to :attr:`sink` (all of them when it is None); op k of the boot is
        #: ``ops[k - op_base]``
        self.ops: list[Op] = []
        self.op_base = 0
        #: takes the ops no later decision can change, in order, as the walk makes them (see :meth:`_hand_out`):
        #: the Trace read() returns then holds no ops.  None: every op is held until the end.  A sink with a
        #: ``watch`` method is given :meth:`_view` before the walk (every observation made before the last op
        #: of a hand-out is made by then, final but a listing still read, whose op is not handed out yet); one whose
        #: ``srcs`` is False reads no op's ``src`` (an op script's printer): the call runs' ops are made without
        self.sink: Callable[[list[Op]], None] | None = None
        #: ops are handed out during the walk (a sink, and no arch's silent calls to put among them at the end)
        self.handing = False
        #: a SetCurrentLimit among the ops handed out (_hidden_before() asks whether any was made)
        self.limit_out = False
        #: a kept line may start a dump (the first complete one seeds before every op made until then)
        self.dump_ahead = True
        self.obs: list[Observation] = []
        self.skipped: list[Skipped] = []
        self.facts: list[tuple[str, str]] = []
        self.release: str | None = None
        self.arch: str | None = None
        self.cmdline = ""
        self.profile: Profile | None = None
        self.era: Era | None = None
        self.nodes: dict[int, tuple[int, int]] = {}
        self.phys_addr_bits = 64
        self.banner = False
        #: debugfs rows (and table names from headers) pasted among console lines, not yet a table
        self.loose_tables: list[tuple[int, str]] = []
        self.memblock_lines = 0
        # state of the walk
        #: the allocation whose API line was read, waiting for its result (and that line; None in a call run)
        self.pending: tuple[Alloc, Line | None] | None = None
        self.dump: _Dump | None = None
        self.section: str | None = None
        self.section_lines: list[Line] = []
        self.mem_end = 0
        self.numa_done = False
        self.scratch_only = False
        self.last_alloc_func = ""
        self.x86_limit_pending = False
        self.arm64_resize_pending = False
        self.first_dump_done = False
        self.phases_seen: set[str] = set()
        self.era_noted: set[str] = set()
        self.hugetlb_open = False
        self.dma_limit: int | None = None
        self.bottom_up = False
        # free_area_init()'s listings: which one is being read, and its observation's index in obs
        self.listing: str | None = None
        self.listing_obs = -1
        self.zones: list[tuple[str, int, int]] = []
        # 7.3 KHO boot: kho_scratch[] areas inherited (seeded from the first dump), preserved memory
        # (kho_preserved_memory_reserve lines, read ahead), the kho_extend_scratch op's index
        self.kho_inherited: list[tuple[int, int]] = []
        self.preserved_ranges: list[tuple[int, int]] = []
        self.kho_early = False
        self.extend_at = -1
        self._src_of: Line | None = None
        #: _boot_scan() of these lines (the list itself, then what it found)
        self._scanned: tuple[list[Line], tuple[list[int], int]] | None = None
        #: indices of the NODE_DATA lines after the first reservation that looked for one
        self._node_data_at: list[int] | None = None
        self._src_last = Src(path)
        #: caller text -> its function, for the callers a call run's walk reads on its own (see _plain_function)
        self._plain_callers: dict[str, str | None] = {}

    # ----------------------------------------------------------------- helpers

    def _src(self, ln: Line) -> Src:
        # the ops of one line share their (immutable) Src: one is made per line, not per op
        if ln is not self._src_of:
            self._src_of = ln
            self._src_last = _new_src(self.path, ln.lineno, ln.ts, ln.raw.strip())
        return self._src_last

    def _kept(self, i: int) -> Line:
        """Kept line *i*; where a CallRun still stands for it, the run's Lines are made and put in its place."""
        ln = self.lines[i]
        if ln.__class__ is not CallRun:
            return ln
        starts = self._run_starts
        if starts is None:
            starts = self._run_starts = list(self.blocks)
        at = starts[bisect_right(starts, i) - 1]
        lines = self.lines
        for j, made in enumerate(ln.lines, at):  # type: ignore[union-attr]
            if lines[j] is ln:  # (those walked are None)
                lines[j] = made
        return lines[i]

    def _skip(self, ln: Line, reason: str) -> None:
        if self.strict:
            raise FormatError(self.path, f"{reason}: {ln.text.strip()[:120]}", line=ln.lineno)
        self.skipped.append(Skipped(self.path, str(ln.lineno), reason, ln.raw.rstrip("\r\n")))

    def _emit(self, op: Op) -> None:
        self.ops.append(op)
        if isinstance(op, Add):
            self.mem_end = max(self.mem_end, op.base + op.size)

    def _infer(self, op_cls: Callable[..., Op], *args: object, ln: Line, why: str, **kw: object) -> None:
        self._emit(op_cls(*args, inferred=why, src=self._src(ln), **kw))

    def _at(self) -> int:
        """How many ops the walk has made (handed out or not): the index of the next."""
        return self.op_base + len(self.ops)

    def _hand_out(self, idx: int) -> int:
        """Give :attr:`sink` the ops no later decision can change; return the kept line to do it again at."""
        if not self.handing:
            return idx + _HAND_OUT_EVERY
        ops = self.ops
        # _seed_from() reads every op made before the first dump and inserts before them; the last op is
        # read again (_before_dump, _hidden_after, _doubled_line); _complete_extension() replaces op extend_at
        n = len(ops) - 1 if self.first_dump_done or not self.dump_ahead else 0
        if self.extend_at >= 0:
            n = min(n, self.extend_at - self.op_base)
        if n > 0:
            out = ops[:n]
            del ops[:n]  # in place: a call-run walk holds the list's append
            self.op_base += n
            # (each kind of op once: the ops are looked at by a C loop)
            self.limit_out = self.limit_out or any(issubclass(kind, SetCurrentLimit) for kind in set(map(type, out)))
            self.sink(out)  # type: ignore[misc]
        return idx + _HAND_OUT_EVERY

    def _arch_edits(self) -> bool:
        """Does :meth:`_arch_state` edit the ops after the walk (a generic arch's silent calls, 32-bit addresses
        widened)?"""
        if self.phys_addr_bits == 32:
            return True
        try:
            return arch_for(self.arch or "x86_64").generic
        except KhoReplayError:
            return False

    def _message(self, ln: Line, kind: str, text: str | None = None, kib: int | None = None) -> None:
        self.obs.append(KernelMessage(at=self._at(), src=self._src(ln), kind=kind,
                                      text=ln.text if text is None else text, kib=kib))

    # ------------------------------------------------------------- entry point

    def _clean_lines(self) -> None:
        # mail quotes, commentary, cut marks and hard wraps come off here (prefixes.excerpt_lines);
        # then what a capture script quoted is told from live output (capture.live_lines)
        lines = live_lines(excerpt_lines(self.raw_lines, self._understood, _wrapped))
        self.lines, repeats = drop_repeats(lines)
        for first, last, of in repeats:
            # counted and listable, never silently dropped
            self.skipped.append(Skipped(self.path, f"{first}-{last}", f"the boot at line {of} pasted again",
                                        self.raw_lines[first - 1].rstrip("\r\n")))

    def read(self) -> Trace:
        """Walk the lines once; return the Trace.

        :raises FormatError: on garbled memblock lines in strict mode, or no memblock lines at all.
        :raises TruncatedError: when the file ends inside a line or a dump.
        :raises UnsupportedError: for a kernel older than every era.
        """
        if self.source is not None and not self.kept and self.boots is None:
            self._stream_relevant(self.source(), self.source if self.rereadable else None, hold=self.hold)
        if self.source is not None and (self.boots is not None or not self._one_boot()):
            # several boots, or one pasted again: the capture is read again for the chosen boot's lines
            self._stream_boot()
        if not self.kept:
            if not self.cleaned:
                self._clean_lines()
            self._select_boot()
            self._keep_relevant(self.lines)
        self._prescan()
        lines: list[Line | None] = self.lines  # type: ignore[assignment]
        walk = self._line
        by_function = self._by_function
        blocks = self.blocks
        idx = 0
        count = len(lines)
        # where ops are next handed out (unless the arch's silent calls go in among them at the end: all held)
        # and the call runs kept as text ahead are made into lines
        hand_at = 0 if self.sink is not None else count
        self.handing = self.sink is not None and not self._arch_edits()
        if self.handing:
            # a dump's head is no call run's line (a doubling line's rest is read as a line: any text counts)
            self.dump_ahead = any("MEMBLOCK configuration:" in lines[i].text  # type: ignore[union-attr]
                                  for i in self._other_indices())
        watch = getattr(self.sink, "watch", None)
        if watch is not None:
            watch(self._view)
        while idx < count:
            if idx >= hand_at:
                hand_at = self._hand_out(idx)
            ln = lines[idx]
            if ln.__class__ is CallRun:
                # a call run not read yet (it stands for each of its lines)
                if self.dump is None and self.listing is None and not self.loose_tables and idx in blocks:
                    idx = self._call_block(idx, blocks[idx])
                    continue
                ln = self._kept(idx)
            t = ln[2]  # type: ignore[index]  # .text
            if (t[:1] in "_m" and ln[1] is not None and self.dump is None  # type: ignore[index]  # .ts
                    and self.listing is None and not self.loose_tables):
                if idx in blocks:
                    # a run of call lines (a dense log is mostly such runs): their fields by one regex
                    idx = self._call_block(idx, blocks[idx])
                    continue
                # a stamped memblock call's line with no dump, listing or table open (most lines of a log):
                # none of _line()'s tests reads it, straight to the one regex its function name can match
                fast = by_function.get(t[:t.find(":")])
                if fast is not None:
                    m = fast[0].match(t)
                    if m:
                        fast[1](self, idx, ln, m)
                        lines[idx] = None
                        idx += 1
                        continue
            walk(idx, ln)  # type: ignore[arg-type]
            lines[idx] = None  # walked: only lines ahead are read again, so its memory can go now
            idx += 1
        if self.loose_tables:
            self._flush_tables()
        # an excerpt may stop inside a dump (grep -A, a mail); a boot's own log ending there was cut
        self._finish_dump(None if self.banner else self.last)
        self._resolve_pending(None)
        if self.last is not None:
            self._close_hugetlb(self.last)
        self._complete_extension()
        if self.memblock_lines == 0:
            raise FormatError(self.path, "no memblock debug lines (was the kernel booted with memblock=debug?)",
                              line=self.line_count or None)
        self._check_cut_last_line()
        self._arch_state()
        if self.sink is not None:
            ops, self.ops = self.ops, []
            ops.reverse()
            while ops:
                # a hand-out's worth at a time, each let go once given: a log may hand out nothing before
                out = ops[-_HAND_OUT_EVERY:]
                del ops[-_HAND_OUT_EVERY:]
                out.reverse()
                self.op_base += len(out)
                self.sink(out)
        return self._trace()

    def _arch_state(self) -> None:
        """The calls a generic arch's code makes without printing them (see :mod:`.generic`)."""
        try:
            arch = arch_for(self.arch or "x86_64")
        except KhoReplayError:
            return
        given = self.arch_override is not None and any(
            p.strip() in ("bottom-up", "top-down", "bottom_up", "top_down") for p in self.arch_override.split(","))
        state = generic_arch_state(ArchState(self.ops, self.obs), arch, self.phys_addr_bits, given)
        self.ops, self.obs = state.ops, state.obs
        if state.bottom_up is not None and state.bottom_up != arch.bottom_up:
            # the context names the direction found, so the printed profile says it
            self.arch = f"{self.arch},{'bottom-up' if state.bottom_up else 'top-down'}"
        self.assumed += state.assumed
        self.facts += state.facts

    def _boot_starts(self) -> list[int]:
        """Indices where each boot's lines begin (its ``Linux version`` line and the stamped lines just before)."""
        return self._boot_scan()[0]

    def _boot_scan(self) -> tuple[list[int], int]:
        """:meth:`_boot_starts` and how many stamped banners the lines hold, from one pass over them, made
        once for the same lines (counting the boots, choosing one and reading ask each, of every line)."""
        done = self._scanned
        if done is not None and done[0] is self.lines:
            return done[1]
        starts = []
        banners = 0
        in_section = False
        # neither a marker nor a banner (most lines): left out at once, two regexes saved
        lines = self.lines
        for i in [i for i in self._other_indices() if lines[i].text[:5] in ("=====", "Linux")]:
            ln = self.lines[i]
            if ln.ts is not None and ln.text[:14] == "Linux version " and VERSION_LINE.match(ln.text):
                banners += 1
            if SECTION_BEGIN.match(ln.text):
                in_section = True
            elif in_section and SECTION_END.match(ln.text):
                in_section = False
            elif VERSION_LINE.match(ln.text) and not (in_section and ln.ts is None):
                j = i
                # arm64 prints "Booting Linux on physical CPU" before the version line
                while j > 0 and self._kept(j - 1).ts == 0.0 and ln.ts == 0.0:
                    j -= 1
                starts.append(j)
        self._scanned = (self.lines, (starts, banners))
        return starts, banners

    def _other_indices(self, lo: int = 0, holding: str | None = None) -> Sequence[int]:
        """Indices of the kept lines from *lo* on but those of call runs (:attr:`blocks`: memblock call lines,
        no marker, banner or context line among them), in order; a run with a line *holding* that text is
        given whole."""
        if not self.blocks:
            return range(lo, len(self.lines))
        out: list[int] = []
        at = lo
        lines = self.lines
        for start, n in self.blocks.items():
            end = start + n
            if end <= at:
                continue
            if holding is not None and self.runs[start].holds(holding):
                # read whole, with the lines around it (no stamp holds the text: in a line's text if in its raw)
                self._kept(start)
                continue
            if start > at:
                out += range(at, start)
            at = end
        out += range(at, len(lines))
        return out

    def _select_boot(self) -> None:
        """Keep one boot's lines: the only one, or the *boot*-th (1-based, -1 the last) of a combined log."""
        starts = self._boot_starts()
        k = self._boot_index(len(starts), self.lines[starts[1]].lineno if len(starts) > 1 else 0)
        if k is None:
            return
        begin = starts[k] if k else 0
        end = starts[k + 1] if k + 1 < len(starts) else len(self.lines)
        # a glued section marker makes two Lines of one raw line: slice the raw lines by line number
        raw_begin = self.lines[begin].lineno - 1
        raw_end = self.lines[end].lineno - 1 if end < len(self.lines) else len(self.raw_lines)
        self.lines = self.lines[begin:end]
        self.raw_lines = self.raw_lines[raw_begin:raw_end]
        # a boot pasted again is listed with the boot whose lines hold it, not with every boot
        self.skipped = [s for s in self.skipped if raw_begin < _first_line(s) <= raw_end]

    def _boot_index(self, starts: int, second: int) -> int | None:
        """The boot ``--boot`` chooses among *starts* (0-based), or None for every line (one boot, or an
        excerpt without a banner); *second* is the line number of the second boot's start, for the error.

        :raises UnsupportedError: for several boots and none chosen, or a boot the log does not hold.
        """
        if self.boot is None:
            if starts > 1:
                raise UnsupportedError(self.path, f"{starts} boots in this log: choose one with --boot N "
                                       f"(1-{starts}, -1 the last)", line=second)
            return None
        if not starts:
            if self.boot in (1, -1):
                return None  # an excerpt without a banner is one boot
            raise UnsupportedError(self.path, "no 'Linux version' line: no boot to choose from")
        k = self.boot - 1 if self.boot > 0 else starts + self.boot
        if not 0 <= k < starts:
            raise UnsupportedError(self.path, f"boot {self.boot} asked, the log holds {starts}")
        return k

    def _stream_relevant(self, pieces: Iterable[str], again: Callable[[], Iterable[str]] | None = None,
                         hold: bool = False) -> None:
        """The lines of a one-boot capture cleaned and filtered as they are split off the text (*pieces*
        of it, in order): only the lines the walk reads are ever held (a capture of millions of lines is
        mostly other output).  *again* gives the pieces anew: call runs then hold their place in the text,
        not the text, read again when walked (:class:`_Chunks`); so they do with *hold*, the text's chunks
        held compressed."""
        blanks = BlankCuts()
        last_raw: list[str] = []
        chunks = _Chunks(self.path, again) if again is not None or hold else None
        self._keep_relevant(iter_live_lines(iter_excerpt_lines(_raw_items(pieces, last_raw, chunks=chunks),
                                                               self._understood, _wrapped, blanks)))
        cuts = {k + 1 for k in blanks.cuts()}  # line numbers
        if cuts:
            self.lines = [blanks.cut(ln) if ln.__class__ is not CallRun and ln.lineno in cuts and not ln.note else ln
                          for ln in self.lines]
        self.raw_lines = last_raw  # what the end-of-file check reads

    def _stream_boot(self) -> None:
        """The chosen boot's lines of a capture holding several (or one pasted again), as :meth:`_clean_lines`
        and :meth:`_select_boot` choose them from every line, read from the source again: the other
        boots' lines are never held."""
        assert self.source is not None
        boots = self.boots = self.boots or _scan(self.source, self.source_key)
        starts = boots.starts
        k = self._boot_index(len(starts), starts[1] if len(starts) > 1 else 0)
        lo, hi = (0, None) if k is None else boots.span(k)
        # a boot pasted again is listed with the boot whose lines hold it, not with every boot
        self.skipped = [Skipped(self.path, f"{first}-{last}", f"the boot at line {of} pasted again", raw)
                        for (first, last, of), raw in zip(boots.drops, boots.drop_raws, strict=True)
                        if lo <= first and (hi is None or first < hi)]
        tail: list[str] = []
        source = self.source
        again: Callable[[], Iterable[str]] = source
        first, state = 1, (False, None)
        if lo > 1 and k is not None and k < len(boots.resume):
            # read from the boot's first line on, in the state the lines before it left the passes in
            # (no line before a boot's stamped first line waits to take it as a piece: pieces are unstamped)
            first, state = lo, boots.resume[k]
            marks = boots.marks

            def again() -> Iterable[str]:
                return _from_line(source(), marks, lo)
        chunks = _Chunks(self.path, again) if self.rereadable else None
        items = iter_live_lines(iter_excerpt_lines(_raw_items(again(), tail, lineno=first, chunks=chunks),
                                                   self._understood, _wrapped, BlankCuts(), lineno=first), *state)
        self._keep_relevant(crop(items, lo, hi, boots.drops))
        if boots.cuts:
            self.lines = [BlankCuts.cut(ln) if ln.__class__ is not CallRun and ln.lineno in boots.cuts and not ln.note
                          else ln for ln in self.lines]
        # what the end-of-file check reads: a boot another follows ends with a newline
        self.raw_lines = tail if hi is None else ["\n"]
        self.source = None

    def _one_boot(self) -> bool:
        """The kept lines hold at most one boot and no stamped banner twice: nothing to choose or drop."""
        starts, banners = self._boot_scan()
        return banners < 2 and len(starts) < 2

    def _keep_relevant(self, lines: Iterable[Line]) -> None:
        """Drop the lines no pass reads (other kernel messages, userspace): one regex test each.

        Kept: lines :data:`RELEVANT` says a handler may read, every line of a section, blank lines
        after a stamped one (cut marks, maybe), and the line after each of those (it may end a dump, a
        listing or pasted tables).
        """
        self.head = []
        self.last = None
        kept: list[Line] = []
        blocks: dict[int, int] = {}
        runs: dict[int, CallRun] = {}
        pos = array("q")  # 8 bytes a line, not an int object
        relevant = RELEVANT.match
        in_section = False
        follow = False
        stamped = False  # the line before was
        i = -1
        ln: Line | PlainRun | None = None
        for item in lines:
            if item.__class__ is CallRun:
                # every line relevant, stamped, no section marker: all kept, each after a kept one; the run
                # itself stands for each of its lines until one is read (see _kept())
                n = item.count  # type: ignore[union-attr]
                if i < 4999:
                    self.head += item.lines[:4999 - i]  # type: ignore[union-attr]
                blocks[len(kept)] = n
                runs[len(kept)] = item  # type: ignore[assignment]
                kept += repeat(item, n)  # type: ignore[arg-type]
                pos.extend(range(i + 1, i + 1 + n))
                i += n
                follow = stamped = True
                ln = item  # type: ignore[assignment]
                continue
            while item is not None:
                if item.__class__ is not PlainRun:
                    group: Iterable[Line] = (item,)  # type: ignore[assignment]
                    item = None
                elif in_section or i < 4999:
                    group, item = item.lines(), None  # type: ignore[union-attr]
                elif follow or (stamped and item.text[item.start] == "\n"):  # type: ignore[union-attr]
                    # its first line is kept (after a kept one): that line alone, then the others
                    first, item = item.pop_first()  # type: ignore[union-attr]
                    group = (first,)
                else:
                    # none of its lines is kept: not relevant, none after a kept or a stamped line blank
                    i += item.count  # type: ignore[union-attr]
                    stamped = item.last_stamped  # type: ignore[union-attr]
                    ln, item = item, None
                    continue
                for ln in group:
                    i += 1
                    if i < 5000:
                        self.head.append(ln)
                    t = ln.text
                    if (in_section or ln.note or relevant(t) or "memblock" in t or "..0x" in t
                            or (stamped and (not t or t.isspace()))):
                        if t[:5] == "=====":
                            if SECTION_BEGIN.match(t):
                                in_section = True
                            elif in_section and SECTION_END.match(t):
                                in_section = False
                        kept.append(ln)
                        pos.append(i)
                        follow = True
                    elif follow:
                        follow = False
                        kept.append(ln)
                        pos.append(i)
                    stamped = ln.ts is not None
        self.lines, self.pos, self.blocks, self.runs, self._run_starts = kept, pos, blocks, runs, None
        self.kept = self.cleaned = True
        self.line_count = i + 1
        self.last = (ln.last_line() if isinstance(ln, (PlainRun, CallRun)) else ln) if i >= 0 else None

    def _ahead(self, idx: int, n: int = 11) -> list[Line]:
        """The kept lines among the *n* lines after kept line *idx* (the others match no pattern)."""
        end = self.pos[idx] + n
        out = []
        for j in range(idx + 1, min(idx + 1 + n, len(self.lines))):
            if self.pos[j] > end:
                break
            out.append(self._kept(j))
        return out

    def _prescan(self) -> None:
        """Learn release, arch and the NUMA layout before the walk needs them."""
        boots = 0
        in_section = False
        # node blocks, best source last: firmware tables, then Initmem spans, then NUMA merges
        firmware: dict[int, tuple[int, int]] = {}
        initmem: dict[int, tuple[int, int]] = {}
        merged: dict[int, tuple[int, int]] = {}
        # most lines: nothing below reads a memblock call but KHO's preserved ranges (left out at once)
        lines = self.lines
        for ln in [ln for ln in map(lines.__getitem__, self._other_indices(holding="kho_preserved_memory_reserve"))
                   if not ((ln.text[:8] == "memblock" or ln.text[:10] == "__memblock")
                           and "kho_preserved_memory_reserve" not in ln.text)]:
            t = ln.text
            if t[:5] == "=====" and SECTION_BEGIN.match(t):
                in_section = True
                continue
            if in_section:
                if SECTION_END.match(t):
                    in_section = False
                if ln.ts is None:
                    continue
            if t[:1] not in _PRESCAN_START and not t[:1].isspace():
                continue  # none of the regexes below can match
            m = VERSION_LINE.match(t)
            if m:
                boots += 1
                if boots == 1:
                    self._version(m, ln)
                continue
            m = NUMA_MERGE_LINE.match(t)
            if m:
                merged[int(m.group("nid"))] = (int(m.group("base"), 16), int(m.group("end"), 16) + 1)
                continue
            m = SRAT_LINE.match(t)
            if m:
                nid = int(m.group("nid"))
                base, end = int(m.group("base"), 16), int(m.group("end"), 16) + 1
                old = firmware.get(nid)
                firmware[nid] = (min(base, old[0]), max(end, old[1])) if old else (base, end)
                continue
            m = FAKE_NODE_LINE.match(t)
            if m:
                firmware = {0: (int(m.group("base"), 16), int(m.group("end"), 16) + 1)}
                continue
            if NO_NUMA_LINE.match(t):
                # dummy_numa_init(): one node over all memory, reported by the Initmem line
                continue
            m = ZONE_LINE.match(t)
            if m:
                # arm64_dma_phys_limit: the end of the lowest DMA zone the kernel printed
                end = int(m.group("end"), 16) + 1
                if m.group("zone") == "DMA" or self.dma_limit is None:
                    self.dma_limit = end
                continue
            m = NID_RANGE_LINE.match(t)
            if m and caller_function(m.group("caller")) == "kho_preserved_memory_reserve":
                base, size = range_of(m)
                self.preserved_ranges.append((base, size))
                continue
            m = INITMEM_LINE.match(t)
            if m:
                # numa_cleanup_meminfo() clips blocks to memblock memory, as Initmem prints them
                initmem.setdefault(int(m.group("nid")), (int(m.group("base"), 16), int(m.group("end"), 16) + 1))
                continue
            m = DUMP_REGION.match(t)
            if m and m.group("type") == "memory":
                # allocations before the first dump need the end of DRAM (CMA limits)
                base, size = range_of(m)
                self.mem_end = max(self.mem_end, base + size)
        self._assume_release_and_arch()
        if self.era is not None and not self.era.numa_blocks_from_dram:
            self.nodes = {**initmem, **firmware, **merged}
        else:
            self.nodes = {**firmware, **initmem, **merged}

    def _version(self, m: re.Match[str], ln: Line) -> None:
        self.banner = True
        # the banner names the arch in the release or the compiler's triple
        self.arch = self.arch or next((a for pat, a in ARCH_HINTS if pat.pattern.startswith("^Linux version")
                                       and pat.search(ln.text)), None)
        if self.kernel is not None:
            return  # the user named the release
        self._set_release(m.group("release"))

    def _set_release(self, release: str) -> None:
        """The release whose era reads the lines; one too old or unreadable is read as the oldest era."""
        vm = re.match(r"(\d+)\.(\d+)", release.strip())
        version = (int(vm.group(1)), int(vm.group(2))) if vm else ERAS[0][0]
        self.era = era_for(version)
        if not vm:
            self.assumed.append(f"cannot read a kernel version from {release!r}: read as {self.era.name}")
        elif self.era is None:
            self.era = ERAS[-1][1]
            self.assumed.append(f"kernel {release} is older than every console era: read as {self.era.name}")
        try:
            self.profile = profile_for(release)
        except KhoReplayError as e:
            self.profile = None
            self.facts.append(("no_replay_profile", str(e)))
        self.release = release

    def _assume_release_and_arch(self) -> None:
        """``--kernel``/``--arch`` when given; else what the banner and the line formats say, noted once."""
        if self.kernel is not None:
            self._set_release(self.kernel)
        elif self.release is None:
            newest = max(since for since, _ in ERAS)
            version, why = infer_release([ln.text for ln in map(self._kept, range(len(self.lines)))
                                          if MEMBLOCKISH.match(ln.text)
                                          or DUMP_REGION.match(ln.text) or DEBUGFS_LINE.match(ln.text)],
                                         max(newest, (7, 3)))
            self._set_release(f"{version[0]}.{version[1]}")
            self.assumed.insert(0, f"no 'Linux version' line: {why}")
        self.phys_addr_bits = _phys_addr_bits(map(self._kept, range(len(self.lines))))
        if self.arch_override is not None:
            self.arch = self.arch_override
            return
        if self.arch is None:
            # the lines that name an arch come early in a boot (CPU, firmware, the first memblock calls)
            self.arch = _arch_hint([ln.text for ln in self.head])
        if self.arch is None and self.phys_addr_bits == 32:
            self.arch = "generic,phys=32"
            self.assumed.append("no line names the arch and addresses are 32-bit: assumed a generic 32-bit arch "
                                "(give --arch)")
        if self.arch is None:
            self.arch = "x86_64"
            self.facts.append(("arch_guess", "x86_64 (no arch hint in the log)"))
            self.assumed.append("no line names the arch: assumed x86_64 (give --arch)")

    def _check_cut_last_line(self) -> None:
        if not self.raw_lines:
            return
        last = self.raw_lines[-1]
        if last.endswith("\n") or self.last is None:
            return
        ln = self.last
        if MEMBLOCKISH.match(ln.text) and not self._understood(ln.text):
            raise TruncatedError(self.path, "the file ends in the middle of a memblock line", line=ln.lineno)

    @staticmethod
    def _understood(text: str) -> bool:
        return any(r.match(text) for r in (RANGE_LINE, NID_RANGE_LINE, ALLOC_NID_LINE, PHYS_ALLOC_LINE,
                                           HUGETLB_ALLOC_LINE, DOUBLED_LINE, DUMP_HEAD, DUMP_SIZES,
                                           DUMP_CNT, DUMP_REGION))

    # ------------------------------------------------------------ line walker

    def _line(self, idx: int, ln: Line) -> None:
        t = ln.text
        # userspace sections printed by the fixtures' init (debugfs copies, /proc files)
        m = SECTION_BEGIN.match(t) if t[:5] == "=====" else None
        if m:
            self.section = m.group("name")
            self.section_lines = []
            return
        if self.section is not None:
            if SECTION_END.match(t):
                self._end_section(ln)
            elif ln.ts is None:
                self.section_lines.append(ln)
            # printk lines interleaved with a section body are still kernel lines
            if ln.ts is None or SECTION_END.match(t):
                return
        if not t or t.isspace():
            hint = table_hint(ln.raw) if ln.note and self.dump is None else None
            if hint is not None:
                self.loose_tables.append((ln.lineno, hint))  # "# cat .../memblock/reserved" names the next table
            elif ln.note == "cut":
                self._cut(ln)
            elif ln.note == "comment" and MEMBLOCKISH.match(clean_line(unquote(ln.raw).lstrip().lstrip("#"))[1]):
                self._skip(ln, "commentary (a '#' line): memblock text not read as the kernel's")
            return  # blank, commentary, or a wrapped piece joined to the line before
        if ln.ts is None and self.dump is None and ".." in t and DEBUGFS_LINE.match(t):
            # /sys/kernel/debug/memblock tables pasted into the log
            self.memblock_lines += 1
            self.loose_tables.append((ln.lineno, t))
            return
        if self.loose_tables:
            self._flush_tables()
        if self.dump is not None and self._dump_line(ln):
            return
        if (self.listing is not None or t[:1] in "ZE") and self._listing_line(ln):
            return
        if t[:1] == "M" and DUMP_HEAD.match(t):
            self.memblock_lines += 1
            self._resolve_pending(idx)
            self._before_dump(ln)
            self.dump = _Dump(ln.lineno, ln.ts, ln)
            return
        # a memblock call's line: straight to the one regex its function name can match
        fast = self._by_function.get(t[:t.find(":")]) if t[:1] in "_m" else None
        if fast is not None:
            m = fast[0].match(t)
            if m:
                fast[1](self, idx, ln, m)
                return
        start = t[:1]
        handlers = self._handlers_from.get(start)
        if handlers is None:
            handlers = self._handlers_from[" " if start.isspace() else ""]
        for regex, handler in handlers:
            m = regex.match(t)
            if m:
                handler(self, idx, ln, m)
                return
        if MEMBLOCKISH.match(t):
            self._skip(ln, why_not_understood(t))

    def _one(self, idx: int, ln: Line) -> None:
        """One line of a call run the block walk leaves to the rules (read()'s loop for one line)."""
        t = ln.text
        fast = self._by_function.get(t[:t.find(":")])
        if fast is not None:
            m = fast[0].match(t)
            if m:
                fast[1](self, idx, ln, m)
                return
        self._line(idx, ln)

    def _call_block(self, idx: int, n: int) -> int:
        """Walk the *n* lines of a CallRun from kept line *idx* (no dump, listing or table open); return the
        index after those it walked.

        One regex (:data:`_CALL_FIELDS`) reads the fields of every line of the usual shapes; such a line
        whose caller needs nothing inferred around it and no silent call is due becomes its op here, as
        its handler would make it.  Any other line goes to its handler (:meth:`_one`); the rest of the
        run goes back to read()'s loop when that leaves a state this walk does not keep.
        """
        lines: list[Line | CallRun | None] = self.lines  # type: ignore[assignment]
        end = idx + n
        run = self.runs[idx]
        # read from the run's text: its Lines are made only for a line a handler reads (_row_line())
        rows = _CALL_FIELDS.findall(run.text())
        if len(rows) != n:
            return self._walk_lines(idx, end)  # not expected (each line is one row): the rules
        first = run.lineno - idx  # kept line i is line first + i of the file
        path = self.path
        # a sink that prints the op script alone reads no op's Src (parse): none is made for the ops made here
        srcs = getattr(self.sink, "srcs", True)
        append = self.ops.append
        era_noted = self.era_noted
        plain = self._plain_callers
        calm = not (self.hugetlb_open or self.x86_limit_pending or self.arm64_resize_pending)
        is_result = self._is_result
        # _take_result() without its tail marks, where the era marks none (decided before the walk)
        tails = self.era is not None and self.era.hugetlb_tail_noinit
        mask = PHYS_MASK
        counted = 0  # memblock lines read here, added to memblock_lines before a handler reads it
        for g in rows:
            caller = g[19]
            func = plain.get(caller, _UNSEEN) if caller else None
            if func is _UNSEEN:
                func = plain[caller] = _plain_function(caller)
            fn = g[2]
            if func is None or not calm:
                pass  # a shape of the rules, a caller with silent calls of its own, or a silent call due
            elif fn == "memblock_phys_free" or fn == "memblock_free":
                # _range_line()
                counted += 1
                base = int(g[3], 16)
                size = (int(g[4], 16) + 1 - base) & mask
                if self.pending is not None:
                    self._resolve_pending(idx)
                if fn not in era_noted:
                    self._era_check(_row_line(first + idx, g[0]), fn)
                # a run's raw line is "[stamp] text\n": stripped, its newline goes (the row's line has none)
                append(_new_free_at(base, size, caller,
                                    _new_src(path, first + idx, float(g[1]), g[0]) if srcs else None))
                lines[idx] = None
                idx += 1
                continue
            elif fn or g[5]:
                # _reserve_line() (memblock_reserve through _range_line(), which counted it too)
                if fn:
                    base_s, end_s, nid, flags = g[3], g[4], None, None
                else:
                    fn = "__memblock_reserve"
                    base_s, end_s, nid, flags = g[5], g[6], int(g[7]), _flag(g[8])
                base = int(base_s, 16)
                size = (int(end_s, 16) + 1 - base) & mask
                pending = self.pending
                if pending is not None:
                    alloc = pending[0]
                    # _is_result(), its common answer first: the allocator's own reservation of the size asked
                    if alloc.size == size and (func in ALLOC_RESERVE_CALLERS
                                               or is_result(alloc, base, size, func)):  # type: ignore[arg-type]
                        counted += 2 if fn == "memblock_reserve" else 1
                        if tails:
                            self._take_result(idx, base, size, nid, flags)
                        else:
                            self.pending = None
                            append(_with_result(alloc, base, nid, flags))
                        lines[idx] = None
                        idx += 1
                        continue
                # else an allocation without its API line is the rules' to rebuild
                if not (func in ALLOC_RESERVE_CALLERS or self._node_data_follows(idx, base, size)):
                    counted += 2 if fn == "memblock_reserve" else 1
                    if pending is not None:
                        self._resolve_pending(idx)
                    if fn not in era_noted:
                        self._era_check(_row_line(first + idx, g[0]), fn)
                    append(_new_reserve_at(base, size, nid, flags, caller,
                                           _new_src(path, first + idx, float(g[1]), g[0]) if srcs else None))
                    lines[idx] = None
                    idx += 1
                    continue
            elif g[9] or g[15]:
                # _api_line()
                counted += 1
                if self.pending is not None:
                    self._resolve_pending(idx)
                src = _new_src(path, first + idx, float(g[1]), g[0]) if srcs else None
                api = g[9]
                if api:
                    alloc = _new_alloc(caller, None, src, _API_RENAMED.get(api, api), int(g[10]), int(g[11], 16),
                                       int(g[12]), int(g[13], 16), int(g[14], 16), False, None, None, None)
                else:
                    alloc = _new_alloc(caller, None, src, "memblock_phys_alloc_range", int(g[15]), int(g[16], 16),
                                       None, int(g[17], 16), int(g[18], 16), False, None, None, None)
                self.pending = (alloc, None)
                self.last_alloc_func = func
                lines[idx] = None
                idx += 1
                continue
            raw = g[0]
            if not caller and raw[raw.index("] ") + 2:][:1] not in "_m":
                # a quiet line (_QUIET_LINE): no handler reads it (every regex of _line() needs a text
                # RELEVANT reads, or "memblock" in it), no state changes
                lines[idx] = None
                idx += 1
                continue
            # the line's handler, as read()'s loop calls it
            self.memblock_lines += counted
            counted = 0
            self._one(idx, _row_line(first + idx, raw))
            lines[idx] = None
            idx += 1
            if self.dump is not None or self.listing is not None or self.loose_tables:
                return idx  # a state this walk does not keep: the rest line by line (read() makes their Lines)
            calm = not (self.hugetlb_open or self.x86_limit_pending or self.arm64_resize_pending)
        self.memblock_lines += counted
        del self.runs[end - n]  # walked: the text it holds can go
        return idx

    def _walk_lines(self, idx: int, end: int) -> int:
        """read()'s loop over kept lines ``[idx, end)`` one by one."""
        lines: list[Line | None] = self.lines  # type: ignore[assignment]
        for i in range(idx, end):
            ln = self._kept(i)
            if self.dump is None and self.listing is None and not self.loose_tables:
                self._one(i, ln)  # type: ignore[arg-type]
            else:
                self._line(i, ln)  # type: ignore[arg-type]
            lines[i] = None
        return end

    def _flush_tables(self) -> None:
        """debugfs tables pasted among the console lines become DebugfsTable observations here."""
        lines, self.loose_tables = self.loose_tables, []
        tables, bad = split_tables(lines)
        for lineno, text, why in bad:
            self._skip(Line(lineno, None, text, text), why)
        for name, lineno, regions in tables:
            self.obs.append(DebugfsTable(at=self._at(), src=Src(self.path, lineno), name=name,
                                         regions=tuple(regions)))

    def _cut(self, ln: Line) -> None:
        """An excerpt's cut mark: what memblock did in the lines left out is unknown."""
        if self.loose_tables:
            self._flush_tables()
        if self.dump is not None:
            self._finish_dump(ln)
        if self.memblock_lines:
            self._resolve_pending(None, None)
            self._message(ln, "cut", ln.raw.strip())

    # --- free_area_init() listings

    def _listing_line(self, ln: Line) -> bool:
        """``Zone ranges:`` / ``Early memory node ranges`` and their items become one observation each."""
        t = ln.text
        head = "zones" if ZONE_RANGES_HEAD.match(t) else "nodes" if NODE_RANGES_HEAD.match(t) else None
        if head is not None:
            self._resolve_pending(None)
            if head == "nodes":
                self._before_node_ranges(ln)
            self.listing = head
            self.listing_obs = len(self.obs)
            src = self._src(ln)
            self.obs.append(ZoneRanges(at=self._at(), src=src, zones=()) if head == "zones"
                            else NodeRanges(at=self._at(), src=src, ranges=()))
            return True
        if self.listing is None:
            return False
        m = (ZONE_ANY_LINE if self.listing == "zones" else NODE_RANGE_ITEM).match(t)
        if m is None:
            self.listing = None
            return False
        o = self.obs[self.listing_obs]
        if m.group("base") is None:
            return True  # an empty zone
        base, end = int(m.group("base"), 16), int(m.group("end"), 16) + 1
        if isinstance(o, ZoneRanges):
            self.zones.append((m.group("zone"), base, end))
            self.obs[self.listing_obs] = dataclasses.replace(o, zones=(*o.zones, (m.group("zone"), base, end)))
        elif isinstance(o, NodeRanges):
            self.obs[self.listing_obs] = dataclasses.replace(o, ranges=(*o.ranges, (int(m.group("nid")), base, end)))
        return True

    # --- dumps

    def _dump_line(self, ln: Line) -> bool:
        d = self.dump
        if d is None:
            return False
        t = ln.text
        m = DUMP_SIZES.match(t)
        if m:
            d.sizes = (int(m.group("mem"), 16), int(m.group("res"), 16))
            return True
        m = DUMP_CNT.match(t)
        if m:
            d.cnt[m.group("type")] = int(m.group("cnt"), 16)
            d.regions.setdefault(m.group("type"), [])
            return True
        m = DUMP_REGION.match(t)
        if m:
            base, size = range_of(m)
            nid = int(m.group("nid")) if m.group("nid") is not None else NUMA_NO_NODE
            d.regions.setdefault(m.group("type"), []).append(Region(base, size, int(m.group("flags"), 16), nid))
            if m.group("note"):
                self._skip(ln, f"text after a dump line is not the kernel's (an annotation?): {m.group('note')!r}")
            return True
        self._finish_dump(ln)
        return False

    def _finish_dump(self, ln: Line | None) -> None:
        d = self.dump
        if d is None:
            return
        self.dump = None
        if not d.complete():
            where = ln.lineno if ln else (self.last.lineno if self.last else d.lineno)
            if ln is None:
                raise TruncatedError(self.path, "the file ends inside a MEMBLOCK configuration dump", line=where)
            self._skip(d.head, f"incomplete MEMBLOCK configuration dump (ends at line {where})")
            return
        mem = d.regions["memory"]
        res = d.regions["reserved"]
        # the old convention dumps an empty type as cnt 1 with a dummy [0, 0) entry
        dump = MemblockDump(
            at=self._at(), src=Src(self.path, d.lineno, timestamp=d.ts),
            memory_size=d.sizes[0], reserved_size=d.sizes[1],  # type: ignore[index]
            memory_cnt=d.cnt["memory"], reserved_cnt=d.cnt["reserved"],
            memory=tuple(mem), reserved=tuple(res),
        )
        self.obs.append(dump)
        if not self.first_dump_done:
            self.first_dump_done = True
            self._seed_from(dump)

    def _before_dump(self, ln: Line) -> None:
        """x86 e820__memblock_setup(): hidden calls between the last memblock_add and the dump."""
        if self.arch != "x86_64" or self.first_dump_done:
            return
        if not self.ops or caller_function(self.ops[-1].caller) != "e820__memblock_setup":
            return
        if self.era and self.era.x86_lowmem_scratch:
            self._infer(Mark, Flag.MEMBLOCK_KHO_SCRATCH, 0, SZ_1M, ln=ln,
                        why="x86 e820__memblock_setup() marks [0, 1M) KHO_SCRATCH for the real-mode trampoline")
        self._infer(TrimMemory, 4096, ln=ln, why="x86 e820__memblock_setup() ends with memblock_trim_memory(PAGE_SIZE)")

    # --- sections

    def _end_section(self, ln: Line) -> None:
        name = self.section
        self.section = None
        body = self.section_lines
        self.section_lines = []
        if name not in ("memblock-memory", "memblock-reserved"):
            return
        table = name.removeprefix("memblock-")
        if body and "No such file" in body[0].text:
            return
        regions, bad = parse_debugfs_lines([(b.lineno, b.text) for b in body])
        for lineno, text, why in bad:
            self._skip(Line(lineno, None, text, text), why)
        self.obs.append(DebugfsTable(at=self._at(), src=Src(self.path, body[0].lineno if body else ln.lineno),
                                     name=table, regions=tuple(regions)))

    # --- allocations

    def _resolve_pending(self, idx: int | None, result: int | str | None = FAILED) -> None:
        """The API line before this point got no reservation line: it failed (or we know the result)."""
        if self.pending is None:
            return
        alloc, _ln = self.pending
        self.pending = None
        self._emit(_with_result(alloc, result))

    def _api_line(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self.memblock_lines += 1
        if self.pending is not None:
            self._resolve_pending(idx)
        fn, size_s, caller = m.group("fn", "size", "caller")
        self._hidden_before(ln, caller)
        size = int(size_s)
        if fn == "memblock_phys_alloc_range":
            align, lo, hi = m.group("align", "min", "max")
            alloc = _new_alloc(caller, None, self._src(ln), fn, size, int(align, 16), None, int(lo, 16),
                               int(hi, 16), False, None, None, None)
        elif fn == "memblock_alloc_hugetlb":
            alloc = Alloc(fn, size, nid=int(m.group("nid")), exact=m.group("exact") != "0",
                          caller=caller, src=self._src(ln))
        else:
            align, nid, lo, hi = m.group("align", "nid", "min", "max")
            alloc = _new_alloc(caller, None, self._src(ln), _API_RENAMED.get(fn, fn), size, int(align, 16),
                               int(nid), int(lo, 16), int(hi, 16), False, None, None, None)
        self.pending = (alloc, ln)
        self.last_alloc_func = caller_function(caller)

    def _reserve_line(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self.memblock_lines += 1
        base_s, end_s, caller = m.group("base", "end", "caller")
        base = int(base_s, 16)
        size = (int(end_s, 16) + 1 - base) & PHYS_MASK  # range_of(), written out: a line of every few
        func = caller_function(caller)
        # only NID_RANGE_LINE has (and always fills) nid and flags; RANGE_LINE's memblock_reserve comes here too
        if m.re is NID_RANGE_LINE:
            nid_s, flags_s = m.group("nid", "flags")
            nid: int | None = int(nid_s)
            flags = _flag(flags_s)
        else:
            nid = flags = None
        if func == DOUBLE_CALLER:
            # the engine doubles by itself: keep the line checkable, not replayed
            self._message(ln, "double_array_reserve", f"{base:#x} {size:#x}")
            return
        if self.pending is not None and self._is_result(self.pending[0], base, size, func):
            self._take_result(idx, base, size, nid, flags)
            return
        if func in ALLOC_RESERVE_CALLERS or self._node_data_follows(idx, base, size):
            self._resolve_pending(idx)
            # the silent calls due before this point (x86's limit after init_mem_mapping()) came first
            self._hidden_before(ln, caller)
            self._orphan_alloc(idx, ln, base, size, nid, caller)
            return
        if self.pending is not None:
            self._resolve_pending(idx)
        self._hidden_before(ln, caller)
        fn = m.group("fn")
        if fn not in self.era_noted:
            self._era_check(ln, fn)
        if fn == "memblock_add_node":
            self._emit(Add(base, size, nid, flags or Flag.MEMBLOCK_NONE, caller=caller, src=self._src(ln)))
            return
        # a Reserve is no Add: _emit()'s test is not needed
        self.ops.append(_new_reserve(base, size, nid, flags, caller=caller, src=self._src(ln)))
        if func in AFTER_CALLERS:
            self._hidden_after(ln, func)

    def _take_result(self, idx: int, base: int, size: int, nid: int | None, flags: Flag | None) -> None:
        """The reservation on kept line *idx* is the pending allocation's result: the allocation, with it, is
        the op."""
        alloc, _ = self.pending  # type: ignore[misc]
        self.pending = None
        self.ops.append(_with_result(alloc, base, nid, flags))  # an Alloc: no Add for _emit() to note
        if self.era and self.era.hugetlb_tail_noinit and caller_function(alloc.caller) in HUGETLB_BOOTMEM_CALLERS:
            self._hugetlb_tail(self._kept(idx), base, size)

    def _hugetlb_tail(self, ln: Line, base: int, size: int) -> None:
        """A gigantic page just allocated at [base, base + size) on *ln*: its tail pages are marked NOINIT."""
        if size > PAGE_SIZE and not self._crosses_zones(base, size):
            self._infer(Mark, Flag.MEMBLOCK_RSRV_NOINIT, base + PAGE_SIZE, size - PAGE_SIZE, ln=ln,
                        why="__alloc_bootmem_huge_page(): memblock_reserved_mark_noinit() on the tail "
                            "pages (7.3: only when the page does not cross zones)")

    @staticmethod
    def _is_result(alloc: Alloc, base: int, size: int, func: str) -> bool:
        """Is this reservation the result of the pending allocation?

        memblock_alloc_range_nid() prints nothing between the API line and its reservation, so the
        first reservation of exactly ``size`` bytes, aligned, inside the window is the result, whatever
        caller it prints (a build that inlines the reserve prints the allocator's caller, or through a
        tail call the boot code itself).  The window's lower end is not checked where
        memblock_alloc_internal() retries from 0; ``max`` 0/1 (ACCESSIBLE/NOLEAKTRACE) is no bound.
        """
        if size != alloc.size:
            return False
        if func in ALLOC_RESERVE_CALLERS:
            return True
        align = alloc.size if alloc.api == "memblock_alloc_hugetlb" else (alloc.align or 1)
        if base % align:
            return False
        hi = alloc.max_addr
        if hi is not None and hi > 1 and base + size > hi:
            return False
        lo = alloc.min_addr
        return not (alloc.api == "memblock_phys_alloc_range" and lo is not None and base < lo)

    def _node_data_follows(self, idx: int, base: int, size: int) -> bool:
        """alloc_node_data()'s reservation, whatever caller it prints: the NODE_DATA line that confirms it."""
        at = self._node_data_at
        if at is None:
            # where NODE_DATA lines are, found once (the lines ahead are all still there)
            lines = self.lines
            at = self._node_data_at = [j for j in self._other_indices(idx + 1)
                                       if lines[j].text[:10] == "NODE_DATA("]  # type: ignore[union-attr]
        k = bisect_right(at, idx)
        if k == len(at) or at[k] > idx + 11 or self.pos[at[k]] > self.pos[idx] + 11:
            return False  # none among the lines _ahead() reads (most reservations)
        want = f"[mem {base:#x}-{base + size - 1:#x}]"
        for nxt in self._ahead(idx):
            if NODE_DATA_LINE.match(nxt.text):
                return nxt.text.endswith(want)
        return False

    def _crosses_zones(self, base: int, size: int) -> bool:
        """7.3 alloc_bootmem_huge_page(): a page spanning two zones gets no tail NOINIT mark (it is freed
        later by hugetlb_free_cross_zone_pages()); 7.3 prints the zones before the hugetlb requests."""
        if self.profile is None or not self.profile.hugetlb_noinit_same_zone_only:
            return False
        return sum(1 for _, b, e in self.zones if b < base + size and base < e) > 1

    def _range_line(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self.memblock_lines += 1
        fn, base_s, end_s, caller = m.group("fn", "base", "end", "caller")
        if fn == "memblock_reserve":
            self._reserve_line(idx, ln, m)
            return
        base = int(base_s, 16)
        size = (int(end_s, 16) + 1 - base) & PHYS_MASK  # range_of(), written out: a line of every few
        func = caller_function(caller)
        if func == DOUBLE_CALLER:
            self._message(ln, "double_array_free", f"{base:#x} {size:#x}")
            return
        if self.pending is not None:
            self._resolve_pending(idx)
        self._hidden_before(ln, caller)
        if fn not in self.era_noted:
            self._era_check(ln, fn)
        src = self._src(ln)
        if fn == "memblock_add":
            self._emit(Add(base, size, caller=caller, src=src))
        elif fn == "memblock_remove":
            self._emit(Remove(base, size, caller=caller, src=src))
        elif fn in ("memblock_free", "memblock_phys_free", "__memblock_free_early", "memblock_free_early"):
            self.ops.append(_new_free(base, size, caller=caller, src=src))  # no Add: _emit()'s test not needed
        elif fn in ("memblock_free_late", "__memblock_free_late"):
            # pages go to the buddy allocator; memblock.reserved is left alone
            self._message(ln, "free_late", f"{base:#x} {size:#x} {caller}")
        else:  # memblock_physmem_add: physmem is not modelled
            self._message(ln, "physmem_add", f"{base:#x} {size:#x} {caller}")
        if func in AFTER_CALLERS:
            self._hidden_after(ln, func)

    def _era_check(self, ln: Line, fn: str) -> None:
        """A reserve/free line this release's era does not print: read it anyway, say so once.

        Distribution kernels backport renames; the line is unambiguous, so it still becomes an op.
        """
        era = self.era
        if era is None or fn in self.era_noted:
            return
        expected = {
            "memblock_reserve": era.reserve_fn, "__memblock_reserve": era.reserve_fn,
            "memblock_free": era.free_fn, "memblock_phys_free": era.free_fn,
            "memblock_free_late": era.free_late_fn, "__memblock_free_late": era.free_late_fn,
        }
        self.era_noted.add(fn)  # checked once per name: a line the era prints is the common case
        if fn in expected and expected[fn] != fn:
            self.facts.append(("era_mismatch", f"{self.path}:{ln.lineno}: {fn} is not printed by {era.name} "
                                               f"kernels (expected {expected[fn]})"))

    def _doubled_line(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self.memblock_lines += 1
        base, size = range_of(m)
        # at = the op that doubled: a pending allocation (emitted next) or the reserve/add just read
        made = self._at()
        at = made if self.pending is not None or not made else made - 1
        self.obs.append(Doubling(at=at, src=self._src(ln), name=m.group("name"),
                                 new_max=int(m.group("max")), base=base, size=size))
        rest = m.group("rest").strip()
        if rest:
            # the doubling line has no newline: a following message may share its line
            self._line(idx, Line(ln.lineno, ln.ts, rest, ln.raw))

    def _double_failed(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self.memblock_lines += 1
        self._message(ln, "double_failed")

    # --- context lines

    def _ctx_version(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self._message(ln, "version")

    def _ctx_cmdline(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        if not self.cmdline:
            self.cmdline = m.group("cmdline").strip()

    def _ctx_e820(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self._message(ln, "e820")

    def _ctx_node_data(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self._message(ln, "node_data")

    def _ctx_memory(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self._resolve_pending(idx)
        self._close_hugetlb(ln)
        src = self._src(ln)
        self._emit(Phase("free_all", inferred="memblock_free_all() runs just before the Memory: line", src=src))
        for nid, (b, e) in sorted(self.nodes.items()):
            self._emit(SetNode(b, e - b, nid, True, src=src,
                               inferred="memblock_free_all(): memmap_init_reserved_pages() sets reserved nids"))
        if self.scratch_only:
            self.scratch_only = False
            self._emit(KhoScratchOnly(False, inferred="memblock_free_all(): memblock_clear_kho_scratch_only()",
                                      src=src))
        self._message(ln, "memory", kib=int(m.group("total")))

    def _ctx_kho(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self._message(ln, "kho")

    def _ctx_hugetlb(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self._message(ln, "hugetlb")

    def _ctx_cma(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self._message(ln, "cma")

    def _ctx_freeing(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self._message(ln, "free_initrd" if m.group("what") == "initrd memory" else "free_initmem",
                      kib=int(m.group("kib")))

    def _ctx_mirror(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self._message(ln, "mirror_fallback")

    def _ctx_panic(self, idx: int, ln: Line, m: re.Match[str]) -> None:
        self.memblock_lines += 1
        self._message(ln, "resize_panic")

    _handlers: tuple[tuple[re.Pattern[str], Callable[..., None]], ...] = ()
    #: _handlers that can match a text starting with this character (" ": whitespace, "": any other)
    _handlers_from: ClassVar[dict[str, tuple[tuple[re.Pattern[str], Callable[..., None]], ...]]] = {}
    _by_function: ClassVar[dict[str, tuple[re.Pattern[str], Callable[..., None]]]] = {}

    # --------------------------------------------------------------- result

    def _view(self) -> tuple[Context, list[Observation]]:
        """What a sink watching the walk reads at each hand-out (see :attr:`sink`): the context (final by the first
        hand-out) and the observations made so far, in a list the walk goes on extending."""
        return self._context(), self.obs

    def _trace(self) -> Trace:
        return Trace(self._context(), tuple(self.ops), tuple(self.obs), tuple(self.skipped))

    def _context(self) -> Context:
        nodes = tuple((nid, b, e) for nid, (b, e) in sorted(self.nodes.items()))
        page_size = arch_for(self.arch).page_size if self.arch else None
        facts = tuple(self.facts) + tuple(("assumed", a) for a in self.assumed)
        if not self.banner:
            facts += (("excerpt", "no 'Linux version' line: the log may start mid-boot"),)
        return Context(source=self.path, release=self.release, arch=self.arch, page_size=page_size,
                       phys_addr_bits=self.phys_addr_bits, cmdline=self.cmdline, nodes=nodes, facts=facts)


#: (regex, handler, the characters a text it matches can start with: " " whitespace, None any)
_HANDLERS: tuple[tuple[re.Pattern[str], Callable[..., None], str | None], ...] = (
    (NID_RANGE_LINE, ConsoleReader._reserve_line, "_m"),
    (RANGE_LINE, ConsoleReader._range_line, "_m "),
    (ALLOC_NID_LINE, ConsoleReader._api_line, "m"),
    (PHYS_ALLOC_LINE, ConsoleReader._api_line, "m"),
    (HUGETLB_ALLOC_LINE, ConsoleReader._api_line, "m"),
    (DOUBLED_LINE, ConsoleReader._doubled_line, "m"),
    (DOUBLE_FAILED_LINE, ConsoleReader._double_failed, "m"),
    (RESIZE_PANIC_LINE, ConsoleReader._ctx_panic, None),
    (MIRROR_FAIL_LINE, ConsoleReader._ctx_mirror, "C"),
    (VERSION_LINE, ConsoleReader._ctx_version, "L"),
    (CMDLINE_LINE, ConsoleReader._ctx_cmdline, "KCc"),
    (E820_LINE, ConsoleReader._ctx_e820, "Beu"),
    (NODE_DATA_LINE, ConsoleReader._ctx_node_data, "N"),
    (MEMORY_LINE, ConsoleReader._ctx_memory, "M"),
    (KHO_LINE, ConsoleReader._ctx_kho, "K"),
    (HUGETLB_LINE, ConsoleReader._ctx_hugetlb, "H"),
    (CMA_LINE, ConsoleReader._ctx_cma, "c"),
    (CMA_MULTI_LINE, ConsoleReader._ctx_cma, "c"),
    (FREEING_LINE, ConsoleReader._ctx_freeing, "F"),
)
ConsoleReader._handlers = tuple((regex, handler) for regex, handler, _ in _HANDLERS)
# a line is tried against the handlers its first character allows only, in the same order (most kept
# lines are memblock calls or other messages right after one: no point trying a dozen context regexes)
ConsoleReader._handlers_from = {
    c: tuple((regex, handler) for regex, handler, starts in _HANDLERS if starts is None or (c and c in starts))
    for c in {*"".join(starts or "" for _, _, starts in _HANDLERS), ""}
}
# each of these names starts the lines of one handler only (no earlier regex of _handlers reads them)
ConsoleReader._by_function = {
    **dict.fromkeys(("__memblock_reserve", "memblock_add_node"), ConsoleReader._handlers[0]),
    **dict.fromkeys(("memblock_add", "memblock_remove", "memblock_reserve", "memblock_free", "memblock_phys_free",
                     "__memblock_free_late", "memblock_free_late", "memblock_physmem_add", "__memblock_free_early",
                     "memblock_free_early"), ConsoleReader._handlers[1]),
    **dict.fromkeys(("memblock_alloc_try_nid", "memblock_alloc_try_nid_raw", "memblock_alloc_exact_nid_raw",
                     "memblock_alloc_try_nid_nopanic", "memblock_virt_alloc_try_nid",
                     "memblock_virt_alloc_try_nid_raw", "memblock_virt_alloc_try_nid_nopanic"),
                    ConsoleReader._handlers[2]),
    "memblock_phys_alloc_range": ConsoleReader._handlers[3],
    "memblock_alloc_hugetlb": ConsoleReader._handlers[4],
}



#: How many kept lines the walk reads between two hand-outs of its ops (ConsoleReader._hand_out)
_HAND_OUT_EVERY = 4096
#: How the texts _prescan() reads begin, but for whitespace (VERSION_LINE, NUMA_MERGE_LINE, SRAT_LINE,
#: FAKE_NODE_LINE, NO_NUMA_LINE, NID_RANGE_LINE, INITMEM_LINE, DUMP_REGION; ZONE_LINE starts with whitespace)
_PRESCAN_START = "LNAFI_mrp"
#: ARCH_HINTS searched in the head's texts joined by newlines, at once (``^`` starts each line: no text holds a
#: newline, and no hint's pattern crosses one), each only where a text it needs is there (str.find() is
#: faster than the regex's own scan): one of these texts is in whatever its pattern matches
_ARCH_HINTS_LINES = tuple((re.compile(pat.pattern, re.MULTILINE), arch, needs) for (pat, arch), needs in zip(
    ARCH_HINTS, (*[("Linux version ",)] * 8, ("CPU: ", "arm_memblock_init+"),
                 ("Booting Linux on physical CPU", "arm64_memblock_init+", "early_pgtable_alloc+",
                  "efi: Getting EFI parameters from FDT"), ("e820", "x86/"),
                 ("riscv: ", "SBI specification", "earlycon: sbi", "setup_bootmem+"),
                 ("MIPS: ", "CPU0 revision is: ", "Determined physical RAM map:"),
                 ("srmmu_", "sparc_", "leon_", "PROMLIB: "), ("using machine vector", "Booting on "),
                 ("Using ", "Hash_table", "ppc64_")), strict=True))


def _arch_hint(texts: list[str]) -> str | None:
    """The arch the first of ARCH_HINTS to match any of *texts* names."""
    joined = "\n".join(texts)
    # the banner's patterns start with it: searched among the banners alone
    banners = "\n".join([t for t in texts if t[:14] == "Linux version "])
    return next((arch for pat, arch, needs in _ARCH_HINTS_LINES if any(n in joined for n in needs)
                 and pat.search(banners if needs[0] == "Linux version " else joined)), None)


#: A run of plain lines no pass reads (see :class:`PlainRun`): each printable ASCII (CRLF or LF), not blank, nothing
#: :data:`RELEVANT` reads, and left as it is by every rule of prefixes._excerpt_line(): a plain
#: ``[ 1.0] text`` line, or one no quote or cut mark, commentary, prefix or stamp starts or holds (an
#: unstamped line holds no '[' before a digit), maybe followed by a blank line.  The texts kept
#: wherever they are (_UNPLAIN) are looked for in the run afterwards: str.find() is faster.
_PLAIN_RUN = re.compile(
    r"(?:\[ *[0-9]+\.[0-9]+\] (?!\[| \[)(?!" + RELEVANT.pattern + r") *[!-~][ -~]*\r?\n"
    r"|(?!\[ *[0-9])(?![^>\n]{0,7}>)(?! *[#<>])(?! *[.8%-][-%<>8 .cCuUtThHeErRsSnNiIpP]*\n)"
    r"(?! *\[ *(?:\.\.|(?i:snip|cut)|[TC][0-9]))(?!\[[A-Z][a-z]{2} )(?!ker|use|mai|dae|aut|sys|lpr|new)"
    r"(?!" + RELEVANT.pattern + r")(?= *[!-~])(?:[ -Z\\-~]++|\[(?! *[0-9]))++\r?\n\n?)+"
)
#: kept (_keep_relevant) or read as a marker, a journal prefix (clean_line) wherever they are
_UNPLAIN = ("memblock", "..0x", "=====", "kernel: ")
#: memblock lines (no run starts there): passed at once
_UNREAD = re.compile(r"(?:(?:\[ *[0-9]+\.[0-9]+\] )?(?:__)?memblock[^\n]*\n)+")
#: below this many lines a run is not worth passing on whole
_MIN_RUN = 4


#: A run of memblock call lines as :class:`CallRun` holds them: stamped, printable ASCII, ending with
#: the caller's offset (a line ending otherwise, with a CR, or unstamped is left to the line stages)
_CALL_LINE = r"\[ *+[0-9]++\.[0-9]++\] (?:__)?memblock_\w++: [ -~]*\+0x[0-9a-f]++/0x[0-9a-f]++\n"
#: ... and between two of them, one other kernel message no pass reads (kept as the line after a kept one,
#: read by no handler): a plain ``[ 1.0] text`` line, printable ASCII, nothing RELEVANT reads, none of the
#: texts kept or read wherever they are (_UNPLAIN)
_QUIET_LINE = (r"\[ *[0-9]+\.[0-9]+\] (?!\[| \[)(?!" + RELEVANT.pattern
               + r")(?![^\n]*(?:memblock|\.\.0x|=====|kernel: )) *[!-~][ -~]*\n")
#: (a call line tried first: the two shapes exclude each other, and most lines of a run are calls).  The
#: possessive repeats (``++``, ``*+``) give up nothing a match could need (each is followed by a character
#: it cannot take): the engine only keeps no state to backtrack into them
_CALL_RUN = re.compile(rf"{_CALL_LINE}(?:{_CALL_LINE}|{_QUIET_LINE}{_CALL_LINE})*+")

#: One line of a CallRun (whole lines, so one row each): the line without its newline, then in the shapes
#: most lines of a dense log have, each a strict subset of its grammar regex (lower-case hex with 0x, a caller
#: without module): the stamp, free or reserve (fn, base, end), ``__memblock_reserve`` (base, end, nid, flags),
#: ``memblock_alloc_try_nid`` and kin (api, size, align, nid, from, max_addr), ``memblock_phys_alloc_range``
#: (size, align, from, max_addr), then the caller; any other line has empty fields, for the rules (possessive
#: repeats as in _CALL_RUN).
_CALL_FIELDS = re.compile(
    r"(\[ *([0-9]++\.[0-9]++)\] (?:"
    r"(memblock_phys_free|memblock_free|memblock_reserve): \[0x([0-9a-f]++)-0x([0-9a-f]++)\] "
    r"|__memblock_reserve: \[0x([0-9a-f]++)-0x([0-9a-f]++)\] nid=(-?[0-9]++) flags=([0-9a-f]++) "
    r"|(memblock_alloc_try_nid|memblock_alloc_try_nid_raw|memblock_alloc_exact_nid_raw): ([0-9]++) bytes "
    r"align=0x([0-9a-f]++) nid=(-?[0-9]++) from=0x([0-9a-f]++) max_addr=0x([0-9a-f]++) "
    r"|memblock_phys_alloc_range: ([0-9]++) bytes align=0x([0-9a-f]++) from=0x([0-9a-f]++) max_addr=0x([0-9a-f]++) "
    r")([!-~]++)|[^\n]*+)\n"
)


#: _call_block()'s mark of a caller not yet classified
_UNSEEN = object()


def _row_line(lineno: int, raw: str) -> Line:
    """The Line of a call run's line *raw* (without its newline), as CallRun.lines makes it."""
    return call_line(lineno, raw + "\n")


def _plain_function(caller: str) -> str | None:
    """The function of *caller* when a line it prints needs nothing around it (_call_block() reads it):
    no silent call of its own before it (infer._may_hide), after it (AFTER_CALLERS), no array doubling;
    None otherwise."""
    func = caller_function(caller)
    return None if func == DOUBLE_CALLER or func in AFTER_CALLERS or _may_hide(func) else func


def _plain_runs(chunk: str, lineno: int, chunks: _Chunks | None = None,
                k: int = -1) -> Iterator[list[str] | PlainRun | CallRun]:
    """*chunk* (whole lines, the first numbered *lineno*) as runs of plain lines no pass reads
    (:class:`PlainRun`), runs of memblock call lines (:class:`CallRun`) and the lines between them
    (``str.splitlines()``'s).  Given *chunks*, *chunk* is its chunk *k*, where the call runs find their text."""
    plain = _PLAIN_RUN.match
    unread = _UNREAD.match
    calls = _CALL_RUN.match
    find = chunk.find
    pos = other = 0  # other: where the text not yet given starts
    size = len(chunk)
    while pos < size:
        m = plain(chunk, pos)
        end = m.end() if m else pos
        if m:
            bad = -1  # the first of _UNPLAIN in the run (a loop: no generator per run)
            for s in _UNPLAIN:
                at = find(s, pos, end)
                if at >= 0 and (bad < 0 or at < bad):
                    bad = at
            if bad >= 0:
                # the run ends before the line that holds it; matched again after that line
                end = chunk.rfind("\n", pos, bad) + 1 or pos
        if end > pos and chunk.count("\n", pos, end) >= _MIN_RUN:
            if other < pos:
                # split here: the other lines may hold line breaks besides newlines
                lines = chunk[other:pos].splitlines(keepends=True)
                lineno += len(lines)
                yield lines
            run = PlainRun(chunk, pos, end, lineno)
            lineno += run.count
            yield run
            pos = other = end
            continue
        # not a run here: memblock call lines made into Lines at once (every line of a memblock log)
        c = calls(chunk, end)
        if c:
            if other < end:
                lines = chunk[other:end].splitlines(keepends=True)
                lineno += len(lines)
                yield lines
            run = CallRun(chunk, end, c.end(), lineno, chunks, k)  # its Lines made only if a stage asks
            lineno += run.count
            yield run
            pos = other = c.end()
            continue
        # else past other memblock lines at once, or on to the next line
        u = unread(chunk, end)
        if u:
            pos = u.end()
            continue
        nl = find("\n", end)
        pos = size if nl < 0 else nl + 1
    if other < size:
        yield chunk[other:].splitlines(keepends=True)


class _Chunks:
    """The chunks :func:`newline_chunks` cuts a capture's text in, by number: the one being read (:meth:`put`),
    and any other made again from the text (*again* gives its pieces anew), reading on from the last one
    asked (the walk asks in order; a look back reads from the start again).  With no *again* (a text made
    once, that cannot be read again: a trace.dat's console text), each chunk is held as :meth:`put` gives it,
    zstd-compressed at a fast level (a tenth of its size, under 1 ms a MiB each way)."""

    def __init__(self, path: str, again: Callable[[], Iterable[str]] | None) -> None:
        self.path = path
        self.again = again
        self.k, self.chunk = -1, ""
        self.prev_k, self.prev = -1, ""
        self._it: Iterator[str] | None = None
        self._next = 0  # the number of the chunk _it gives next
        #: no *again*: every chunk put is held, compressed, back to back in :attr:`kept` (one block of memory:
        #: many blocks among the text's passing ones would leave holes in the heap), chunk k at ``ends[k - 1]``
        self.held = again is None
        self.kept = bytearray()
        self.ends: list[int] = []
        self._zc: Any = None
        self._zd: Any = None
        if again is None:
            import zstandard

            self._zc, self._zd = zstandard.ZstdCompressor(level=-3), zstandard.ZstdDecompressor()

    def put(self, k: int, chunk: str) -> None:
        """Chunk *k*, as the reading pass splits it."""
        self.k, self.chunk = k, chunk
        if self._zc is not None:
            # surrogatepass: a text decoded with surrogateescape comes back the same
            self.kept += self._zc.compress(chunk.encode("utf-8", "surrogatepass"))
            self.ends.append(len(self.kept))

    def get(self, k: int) -> str:
        """Chunk *k*.

        :raises FormatError: when the text read again has no such chunk (the file changed meanwhile).
        """
        if k == self.k:
            return self.chunk
        if k == self.prev_k:
            return self.prev
        if self._zd is not None:
            if not 0 <= k < len(self.ends):
                raise FormatError(self.path, "no such chunk of the text")
            block = memoryview(self.kept)[self.ends[k - 1] if k else 0:self.ends[k]]
            chunk = self._zd.decompress(block).decode("utf-8", "surrogatepass")
            self.prev_k, self.prev = self.k, self.chunk
            self.k, self.chunk = k, chunk
            return chunk
        if self._it is None or k < self._next:
            self._it = newline_chunks(self.again())  # type: ignore[misc]
            self._next = 0
        for chunk in self._it:
            self._next += 1
            if self._next > k:
                self.prev_k, self.prev = self.k, self.chunk
                self.k, self.chunk = k, chunk
                return chunk
        raise FormatError(self.path, "the file changed while it was read")


def _first_line(s: Skipped) -> int:
    """The first line number of a Skipped record's position (``12`` or ``12-40``)."""
    return int(s.position.partition("-")[0])


def _raw_items(pieces: Iterable[str], tail: list[str], recent: deque[tuple[int, str]] | None = None,
               marks: list[tuple[int, int]] | None = None, lineno: int = 1,
               chunks: _Chunks | None = None) -> Iterator[str | PlainRun | CallRun]:
    """The lines of the text of *pieces* (those of ``text.splitlines()``), one at a time, runs of plain lines
    no pass reads on whole (most of a long capture).  *tail* gets the last raw line read; *recent* the
    last lines given one by one, with their numbers; *marks* the character offset and line number where
    each chunk starts.  The first line is numbered *lineno*.  Given *chunks* (the same pieces' chunks),
    the call runs hold their place in them."""
    offset = 0
    for k, chunk in enumerate(newline_chunks(pieces)):
        if marks is not None:
            marks.append((offset, lineno))
            offset += len(chunk)
        if chunks is not None:
            chunks.put(k, chunk)
        for item in _plain_runs(chunk, lineno, chunks, k):
            if item.__class__ is PlainRun:
                lineno += item.count  # type: ignore[union-attr]
                yield item
            elif item.__class__ is CallRun:
                if recent is not None:
                    recent.extend((ln.lineno, ln.raw) for ln in item.lines[-16:])  # type: ignore[union-attr]
                lineno += item.count  # type: ignore[union-attr]
                yield item
            elif recent is None:
                lineno += len(item)
                yield from item  # type: ignore[misc]
            else:
                for raw in item:  # type: ignore[union-attr]
                    recent.append((lineno, raw))
                    lineno += 1
                    yield raw
        tail[:] = chunk[chunk.rfind("\n", 0, len(chunk) - 1) + 1:].splitlines(keepends=True)[-1:]


#: The last capture :func:`_scan` read: (what tells its text, where its boots are).  Reading each boot of
#: it (validate reads them all) scans it once.
_last_scan: tuple[Hashable, Boots] | None = None


def _scan(source: Callable[[], Iterable[str]], key: Hashable) -> Boots:
    """Where the boots of the text *source* gives are (:func:`.split.scan`), and its blank lines that are cuts."""
    global _last_scan
    if _last_scan is not None and key is not None and _last_scan[0] == key:
        return _last_scan[1]
    blanks = BlankCuts()
    recent: deque[tuple[int, str]] = deque(maxlen=16)

    def raw_of(lineno: int) -> str:
        return next(raw for n, raw in recent if n == lineno).rstrip("\r\n")

    marks: list[tuple[int, int]] = []
    items = iter_live_lines(iter_excerpt_lines(_raw_items(source(), [], recent, marks), ConsoleReader._understood,
                                               _wrapped, blanks))
    boots = scan(items, raw_of)
    boots.cuts = {k + 1 for k in blanks.cuts()}
    boots.marks = marks
    _last_scan = (key, boots)
    return boots


def _wrapped(text: str) -> bool:
    """Does *text* look like the start of a memblock line a mail hard-wrapped?"""
    if not ("mem" in text or "reserved" in text) or not WRAPPED_START.match(text):
        return False
    # most lines end with their caller's "+0x../0x..": try there before searching the whole line
    at = text.rfind("+0x")
    return not (at >= 0 and COMPLETE_END.match(text, at)) and not COMPLETE_END.search(text)


@lru_cache(maxsize=256)
def _flag(hex_flags: str) -> Flag:
    """A printed ``flags=`` value (a few distinct ones, on every reservation line)."""
    return Flag(int(hex_flags, 16))


#: The ops and Src a log of millions of lines makes one or more per line, built by ops.fast_new()'s
#: constructors: the objects the dataclasses' __init__ makes (they validate nothing: the grammar's
#: regexes already gave each field its type), twice as fast.  Alloc takes every field, in order.
_new_src = fast_new(Src, "path", "line", "timestamp", "text")
_new_reserve = fast_new(Reserve, "base", "size", "nid", "flags")
_new_free = fast_new(Free, "base", "size")
#: ... and with caller and src positional (a call with keywords costs more): the block walk's
_new_reserve_at = fast_new(Reserve, "base", "size", "nid", "flags", "caller", "src")
_new_free_at = fast_new(Free, "base", "size", "caller", "src")
_new_alloc = fast_new(Alloc, *(f.name for f in dataclasses.fields(Alloc)))
#: the old names of the allocation APIs, as the model knows them
_API_RENAMED = {"memblock_virt_alloc_try_nid": "memblock_alloc_try_nid",
                "memblock_virt_alloc_try_nid_nopanic": "memblock_alloc_try_nid",
                "memblock_alloc_try_nid_nopanic": "memblock_alloc_try_nid",
                "memblock_virt_alloc_try_nid_raw": "memblock_alloc_try_nid_raw"}


def _with_result(alloc: Alloc, expect: int | str | None, res_nid: int | None = None,
                 res_flags: Flag | None = None) -> Alloc:
    """*alloc*, the pending allocation, with the result its log recorded.  It is the reader's alone until
    emitted (only ``pending`` holds it, with its expect and res_* unset): filled in place, not copied
    (``dataclasses.replace()`` made a second Alloc per allocation line of a log of millions)."""
    _set_expect(alloc, expect)
    _set_res_nid(alloc, res_nid)
    _set_res_flags(alloc, res_flags)
    return alloc


_set_expect, _set_res_nid, _set_res_flags = (vars(Alloc)[name].__set__ for name in ("expect", "res_nid", "res_flags"))


def _phys_addr_bits(lines: Iterable[Line]) -> int:
    """32 when the kernel prints physical addresses with 8 hex digits (``%pa`` of a 32-bit phys_addr_t)."""
    for ln in lines:
        m = _FIRST_RANGE.match(ln.text)
        if m:
            return 32 if len(m.group(1) or m.group(2)) == 8 else 64
    return 64


_FIRST_RANGE = re.compile(r"^\s*(?:__)?memblock_\w+: \[0x([0-9a-fA-F]+)-|^\s*memory\[0x[0-9a-f]+\]\s+\[0x([0-9a-f]+)-")


def read_console_text(text: str, path: str = "<console>", *, strict: bool = False,
                      boot: int | None = None, kernel: str | None = None, arch: str | None = None,
                      sink: Callable[[list[Op]], None] | None = None) -> Trace:
    """Read console *text* into a Trace; errors name *path*.  See :func:`read_console`.

    :param kernel: the release to read it as (``--kernel``); default: the banner's, else the line formats'.
    :param arch: the arch (``--arch``); default: what the log names, else x86_64.
    :param sink: given, it takes the ops in order, a list at a time, as the walk makes them, and the Trace
        holds none (:attr:`ConsoleReader.sink`); an error may still come after some were given.
    """
    reader = ConsoleReader(path, [], strict=strict, boot=boot, kernel=kernel, arch=arch)
    reader.sink = sink
    return _read(reader, lambda: (text,), _text_key(path, text))


def read_console_pieces(pieces: list[str] | Iterator[str], path: str = "<console>", *, strict: bool = False,
                        sink: Callable[[list[Op]], None] | None = None) -> Trace:
    """:func:`read_console_text` of ``"".join(pieces)``, each piece let go (set to ``""``) once the reader has
    it: the text is never held whole, only its chunks compressed (call runs read their text there when walked,
    :class:`_Chunks`).  It is read once, so it must hold one boot at most: at most one
    ``Linux version`` anywhere (else :class:`ValueError`: give it to :func:`read_console_text`).  *pieces*
    may also be an iterator, its pieces made as the reader takes them: the caller then vouches for the one boot."""
    if isinstance(pieces, list) and sum(p.count("Linux version") for p in pieces) > 1:
        raise ValueError("read_console_pieces() reads one boot: this text may hold several")
    taken = False

    def source() -> Iterator[str]:
        nonlocal taken
        if taken:
            raise AssertionError("read_console_pieces(): a one-boot text read twice")
        taken = True
        if not isinstance(pieces, list):
            yield from pieces
            return
        for i in range(len(pieces)):
            piece, pieces[i] = pieces[i], ""
            yield piece

    reader = ConsoleReader(path, [], strict=strict)
    reader.sink = sink
    reader.rereadable = False
    reader.hold = True
    return _read(reader, source, object())  # a key no other read shares: nothing cached is reused


def read_console_file(f: TextFile, *, strict: bool = False, boot: int | None = None, kernel: str | None = None,
                      arch: str | None = None, sink: Callable[[list[Op]], None] | None = None) -> Trace:
    """:func:`read_console_text` of a file's text, read a piece at a time (never all held at once)."""
    reader = ConsoleReader(str(f.path), [], strict=strict, boot=boot, kernel=kernel, arch=arch)
    reader.sink = sink
    return _read(reader, f.pieces, f.identity())


def _read(reader: ConsoleReader, source: Callable[[], Iterable[str]], key: Hashable) -> Trace:
    streams = reader.boot in (None, 1, -1)
    if not _adopt(reader, source, key, streams):
        # read as it is split; a capture of several boots (known from its count, or by asking for the
        # second) is read again for the one chosen
        reader.source, reader.source_key = source, key
        if not streams or (_last_scan is not None and _last_scan[0] == key):
            reader.boots = _scan(source, key)
    return reader.read()


def _from_line(pieces: Iterable[str], marks: list[tuple[int, int]], lineno: int) -> Iterator[str]:
    """The text of *pieces* from the start of line *lineno* on; *marks*: where :func:`_raw_items` found the
    chunks of this text to start (character offset, line number)."""
    offset, first = marks[bisect_right(marks, lineno, key=lambda m: m[1]) - 1]
    skip = offset
    rest = iter(pieces)
    for piece in rest:
        if skip < len(piece):
            break
        skip -= len(piece)
    else:
        return
    # newline_chunks() cuts the chunk scan numbered from *first* again, from the same offset
    chunks = newline_chunks(itertools.chain((piece[skip:],), rest))
    for chunk in chunks:
        lines = chunk.splitlines(keepends=True)
        if first + len(lines) > lineno:
            yield "".join(lines[lineno - first:])
            yield from chunks
            return
        first += len(lines)


def _text_key(path: str, text: str) -> Hashable:
    return (path, len(text), hash(text))


#: The text is split into lines a chunk of about this many characters at a time.
_CHUNK = 1 << 20


def newline_chunks(pieces: Iterable[str]) -> Iterator[str]:
    """The text of *pieces* cut after the first newline :data:`_CHUNK` or more into each chunk (the last:
    the rest)."""
    buf = ""
    size = _CHUNK
    for piece in pieces:
        buf = buf + piece if buf else piece
        start = 0
        while True:
            end = buf.find("\n", start + size)
            if end < 0:
                break
            yield buf[start:end + 1]
            start = end + 1
        if start:
            buf = buf[start:]
    if buf:
        yield buf


#: What count_boots() read last, for the read that follows it (validate and kho count a capture's
#: boots, then read it): (what tells the text, the reader that counted).
_last_counted: tuple[Hashable, ConsoleReader] | None = None


def _adopt(reader: ConsoleReader, source: Callable[[], Iterable[str]], key: Hashable, streams: bool) -> bool:
    """Give *reader* the lines count_boots() of the same text (*key*) prepared, if it did (once)."""
    global _last_counted
    last, _last_counted = _last_counted, None
    if last is None or last[0] != key or (last[1].kept and not streams):
        return False
    done = last[1]
    for name in ("raw_lines", "lines", "pos", "blocks", "runs", "head", "last", "line_count", "cleaned", "kept",
                 "skipped", "_scanned"):
        setattr(reader, name, getattr(done, name))
    reader.source = source if done.kept else None  # streamed: the read may still need the text
    return True


def count_boots(text: str, path: str = "<console>") -> int:
    """How many boots a console capture holds (one per ``Linux version`` line outside dumps)."""
    return _count(ConsoleReader(path, []), lambda: (text,), _text_key(path, text))


def count_boots_file(f: TextFile) -> int:
    """:func:`count_boots` of a file's text, read a piece at a time."""
    return _count(ConsoleReader(str(f.path), []), f.pieces, f.identity())


def _count(reader: ConsoleReader, source: Callable[[], Iterable[str]], key: Hashable) -> int:
    global _last_counted
    reader._stream_relevant(source(), source)
    if not reader._one_boot():
        # boots to tell apart, or one pasted again: where they are (each read then reads its own lines)
        _last_counted = None
        return len(_scan(source, key).starts)
    _last_counted = (key, reader)
    return len(reader._boot_starts())


def boot_lines(text: str, path: str = "<console>", boot: int | None = None) -> list[str]:
    """The raw lines (newlines kept) of one boot of a console capture, as ``read_console_text`` selects them.

    :raises UnsupportedError: several boots and *boot* is None, or no such boot.
    """
    reader = ConsoleReader(path, text.splitlines(keepends=True), boot=boot)
    reader._clean_lines()
    reader._select_boot()
    return list(reader.raw_lines)


def read_console(path: str | Path, *, strict: bool = False, boot: int | None = None,
                 kernel: str | None = None, arch: str | None = None) -> Trace:
    """Read a ``memblock=debug`` console log (plain, .gz or .xz) into a Trace.

    :param path: the log file.
    :param strict: raise on the first memblock-looking line not understood.
    :param boot: which boot of a log holding several (1-based, -1 the last); None: the log must hold one.
    :param kernel: read it as this release (default: the banner's, else inferred from the line formats).
    :param arch: the machine's arch (default: what the log names).
    :raises InputError: (one of its subclasses) naming the file and line.
    """
    from .. import read_text

    return read_console_text(read_text(path), str(path), strict=strict, boot=boot, kernel=kernel, arch=arch)

