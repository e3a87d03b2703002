# SPDX-License-Identifier: GPL-2.0-only
"""Sweeps: one boot replayed over a grid of what-ifs (KASLR slots x boot parameters) x designs.

The trace is parsed once; each point is the trace with its what-ifs applied
(:func:`~.params.apply_sets`, then :func:`~.image.move_image`) and replayed
under each strategy, cold and with ``kexec`` the KHO boot after it.  Points
run through :func:`~kho_replay.replay.parallel.map_points` (a process pool, or
Dask distributed with *scheduler*); rows come back in grid order, so the output
is the same bytes whatever ran where.

Boots share their prefix: the points of one strategy differ only from the
first op their what-ifs change (the first index where the transformed op lists
differ: for a KASLR slot the image reservation, for ``hugepages=`` the first
dropped gigantic request; earlier if a what-if moves a decision point), so the
ops before it run once, in this process, and each point continues from a copy
of that state (:meth:`~kho_replay.replay.kho.boot.Boot.fork`).  With ``kexec``
the KHO boot replays the same what-if trace, so it parts at the same op or
sooner: at its first decision point (``kho_populate()``, before the first
allocation), where the scratch and preserved memory that the point's cold boot
hands over come in.  No what-if reaches the KHO boot alone: every ``--set``,
``--image-at`` and KASLR slot rewrites the one trace both kernels replay, and
the KHO boot starts from what the cold boot left.

The KASLR slots depend on ``hugepages=`` (the decompressor keeps 1 GiB blocks
free for the gigantic pages), so each parameter combination gets its own slot set.

>>> from kho_replay.replay.ops import Context, Trace, parse_script
>>> t = Trace(Context(cmdline="kho=on", release="7.2.13"), parse_script('''
... reserve_kern 0x4000000 46M
... add 0x100000 0xfff00000 nid=0
... alloc memblock_phys_alloc_range size=64M align=4K min=0x0 max=0x100000000
... phase free_all
... '''))
>>> res = sweep(t, strategies=["baseline"], sets={"kho_scratch": ["64M,64M,64M", "50%"]}, jobs=1)
>>> [(r.params, r.scratch_reserved, r.lowmem >> 20) for r in res.rows]
[('kho_scratch=64M,64M,64M', True, 64), ('kho_scratch=50%', True, 56)]
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from ..errors import KhoReplayError
from ..kho.outcome import Outcome
from ..kho.preserve import PreserveSpec
from ..ops import Trace
from ..parallel import default_jobs, map_points
from ..strategies import Strategy
from .image import move_image
from .kaslr import all_slots, sample_slots, trace_slots
from .params import apply_sets, check_param

if TYPE_CHECKING:
    from ..kho.boot import Boot, WalkTables

__all__ = ["GRID_LIMIT", "Point", "Row", "SweepResult", "points", "prefix_boot", "replay",
           "run_point", "summary", "sweep"]

#: Points a sweep runs without ``yes=True`` (``--yes``).
GRID_LIMIT = 100_000


@dataclass(frozen=True, slots=True)
class Point:
    """One what-if: the image address (None: where the trace had it) and ``(param, value)`` settings."""

    image_at: int | None
    sets: tuple[tuple[str, str], ...]
    strategy: str


@dataclass(frozen=True, slots=True)
class Row:
    """The outcome metrics of ``kho`` for one point, strategy and boot."""

    image_at: int | None
    params: str
    strategy: str
    boot: str
    scratch_reserved: bool
    scratch_failed: str | None
    lowmem: int
    global_: int
    pernode: int
    gigantic_requested: int
    gigantic_allocated: int
    gigantic_in_scratch: int
    gigantic_addrs: tuple[int, ...]
    rsrv_kern: int
    estimated_free_pages: int
    max_threads: int
    panic: str | None
    #: bytes of ``hugetlb_cma=`` areas in place (0: none).
    hugetlb_cma: int = 0

    @classmethod
    def columns(cls) -> tuple[str, ...]:
        """Column names, in order."""
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True, slots=True)
class SweepResult:
    """The rows of a sweep, in grid order, and what was swept."""

    trace: str
    strategies: tuple[str, ...]
    kexec: bool
    swept: tuple[str, ...]
    rows: tuple[Row, ...]


def _row(p: Point, o: Outcome) -> Row:
    s = o.scratch
    return Row(p.image_at, " ".join(f"{k}={v}" for k, v in p.sets), p.strategy, o.boot, bool(s.enabled),
               s.failed, s.lowmem, s.global_, sum(size for _, size in s.pernode) if s.pernode else 0,
               o.gigantic.requested, o.gigantic.allocated, o.gigantic.in_scratch, tuple(o.gigantic.addrs),
               o.rsrv_kern, o.estimated_nr_free_pages, o.max_threads, o.panic,
               sum(size for _, _, size in o.hugetlb_cma))


def run_point(trace: Trace, kexec: bool, preserve: str, p: Point, second: Trace | None = None) -> list[Row]:
    """Replay one point: its cold boot and, with *kexec*, the KHO boot after it (*second*: the real
    second kernel's log, for ``preserve="log"`` and the kexec segments)."""
    from ..kho.boot import run_cold, run_kexec

    t = apply_sets(trace, p.sets)
    if p.image_at is not None:
        t = move_image(t, p.image_at, check=False)  # points() only yields slots of this parameter set
    s = _strategy(p.strategy)
    if kexec:
        return [_row(p, o) for o in run_kexec(t, s, preserve=preserve, second=second)]
    return [_row(p, run_cold(t, s))]


@functools.lru_cache(maxsize=64)
def _strategy(spec: str) -> Strategy:
    # Looked up once per process: the lookup reads the entry points, a third of a replay's time.
    from ..strategies import get

    name, *opts = spec.split("+")
    return get(name, tuple(opts))


def replay(trace: Trace, strategy: str = "merged", *, image_at: int | None = None,
           sets: Sequence[tuple[str, str]] = (), kexec: bool = False, preserve: str = "hugetlb",
           second: Trace | None = None) -> list[Row]:
    """One what-if replayed under *strategy* (``NAME[+OPTION]``): its cold-boot :class:`Row`, and with
    *kexec* the KHO boot's.  *image_at* is checked against the KASLR slots under *sets*.

    :raises KhoReplayError: for a bad parameter, an impossible slot or an unknown strategy.
    """
    if image_at is not None:
        move_image(apply_sets(trace, sets), image_at)  # refuses an impossible slot
    return run_point(trace, kexec, preserve, Point(image_at, tuple(sets), strategy), second)


def _kaslr_images(trace: Trace, kaslr: str | int | None, seed: int) -> list[int | None]:
    if kaslr is None:
        return [None]
    areas = trace_slots(trace)
    if not areas:
        raise KhoReplayError(f"{trace.context.source}: no KASLR slots: physical KASLR is off for this boot "
                             "(nokaslr, too many memmap=, or no region fits)")
    if kaslr == "all":
        return list(all_slots(areas))
    if isinstance(kaslr, int) and kaslr > 0:
        return list(sample_slots(areas, kaslr, seed))
    raise KhoReplayError(f"--kaslr {kaslr}: expected all, N or N:SEED")


def parse_kaslr(text: str) -> tuple[str | int, int]:
    """``all``, ``N`` or ``N:SEED`` into (``"all"`` or N, seed)."""
    if text == "all":
        return "all", 0
    n, _, seed = text.partition(":")
    if not n.isdigit() or int(n) == 0 or (seed and not seed.isdigit()):
        raise KhoReplayError(f"--kaslr {text}: expected all, N or N:SEED")
    return int(n), int(seed or 0)


def points(trace: Trace, *, strategies: Sequence[str], kaslr: str | int | None = None, seed: int = 0,
           sets: Mapping[str, Sequence[str]] | None = None, images: Sequence[int] | None = None) -> list[Point]:
    """The grid in order: parameter combinations, then image addresses, then strategies.

    :raises KhoReplayError: for a bad parameter or value, or an impossible *images* address.
    """
    sets = dict(sets or {})
    ctx = trace.context
    for key, values in sets.items():
        if not values:
            raise KhoReplayError(f"--set {key}=: no values")
        for v in values:
            check_param(key, v, arch=ctx.arch or "x86_64", release=ctx.release)
    combos = list(itertools.product(*[[(k, v) for v in vals] for k, vals in sets.items()]))
    out = []
    for combo in combos:
        t = apply_sets(trace, combo)
        if images is not None:
            for a in images:
                move_image(t, a)  # refuses an address that is not a slot under these parameters
            imgs: list[int | None] = list(images)
        else:
            imgs = _kaslr_images(t, kaslr, seed)
        out += [Point(a, tuple(combo), s) for a in imgs for s in strategies]
    return out


def sweep(
    trace: Trace,
    *,
    strategies: Sequence[str] = ("baseline", "merged"),
    kaslr: str | int | None = None,
    seed: int = 0,
    sets: Mapping[str, Sequence[str]] | None = None,
    images: Sequence[int] | None = None,
    kexec: bool = False,
    preserve: str = "hugetlb",
    second: Trace | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    yes: bool = False,
) -> SweepResult:
    """Replay *trace* over KASLR slots (*kaslr*: ``"all"`` or a sample size, drawn with *seed*; or explicit
    *images*) x *sets* (parameter -> values) x *strategies*; one :class:`Row` per point and boot.

    *second* is the real second kernel's log (``preserve="log"``, kexec segments).  *progress* gets
    (points done, points in all).

    :raises KhoReplayError: for bad what-ifs, or a grid over :data:`GRID_LIMIT` points without *yes*.
    """
    from ..strategies import get

    for spec in strategies:
        name, *opts = spec.split("+")
        get(name, tuple(opts))
    grid = points(trace, strategies=strategies, kaslr=kaslr, seed=seed, sets=sets, images=images)
    if len(grid) > GRID_LIMIT and not yes:
        raise KhoReplayError(f"{len(grid):,} points is more than {GRID_LIMIT:,}: narrow the grid or pass --yes")
    if kexec:
        PreserveSpec.parse(preserve)  # a bad spec is one error here, not one per point
    results = _shared_prefix_map(trace, grid, kexec=kexec, preserve=preserve, second=second, jobs=jobs,
                                 scheduler=scheduler, progress=progress)
    swept = tuple(["image_at"] if (kaslr is not None or images is not None) else []) + tuple(sets or {})
    return SweepResult(trace.context.source, tuple(strategies), kexec, swept,
                       tuple(r for rows in results for r in rows))


def _point_trace(trace: Trace, p: Point, cache: dict[tuple[tuple[str, str], ...], Trace] | None = None) -> Trace:
    t = cache.get(p.sets) if cache is not None else None
    if t is None:
        t = apply_sets(trace, p.sets)
        if cache is not None:
            cache[p.sets] = t
    # points() only yields slots of this parameter set
    return t if p.image_at is None else move_image(t, p.image_at, check=False)


@dataclass(frozen=True, slots=True)
class _Chunk:
    # Points of one strategy, by grid index, the cold boot walked to their first point-dependent op and,
    # for a kexec sweep, the KHO boot walked to its own.
    prefix: Boot
    points: tuple[tuple[int, Point], ...]
    kho: Boot | None = None


def prefix_boot(base: Trace, strategy: str, traces: Iterable[Trace], *, kexec: bool = False) -> Boot:
    """The cold boot of *base* under *strategy*, walked up to the first op where the walk of any of *traces*
    (what-ifs of *base*) would differ from it: the state every one of them shares.

    That is the first index where the op lists differ, or earlier when a what-if's command line
    classifies an op differently or moves a decision point (:meth:`Boot.shared_until`, checked on the
    first trace of each command line; :meth:`Boot.fork` checks every one).  With *kexec*, the KHO boot
    after it instead, walked no further and not past its first decision point (:meth:`Boot.first_hook`):
    :meth:`Boot.fork` gives it each point's handover.
    """
    cold = _prefix_boot(base, strategy, *_shared_ops(base, traces))
    return _kho_prefix(base, strategy, cold.at) if kexec else cold


def _shared_ops(base: Trace, traces: Iterable[Trace]) -> tuple[int, list[Trace]]:
    # How many ops every trace has as base has them, and one trace per command line.
    from ..kho.boot import first_difference

    k = len(base.ops)
    seen: dict[str, Trace] = {}
    for t in traces:  # one at a time: thousands of what-if traces alive at once would slow the collector
        k = min(k, first_difference(base.ops, t.ops))
        seen.setdefault(t.context.cmdline, t)
    return k, list(seen.values())


def _prefix_boot(base: Trace, strategy: str, k: int, cmdlines: Sequence[Trace],
                 tables: dict[str, WalkTables] | None = None) -> Boot:
    # tables: walk tables by command line, kept across strategies (they depend on the trace and kernel only)
    from ..kho.boot import new_boot, walk_tables

    boot = new_boot(base, _strategy(strategy), kernel=None, arch=None, kexec=False)
    boot.begin()
    tables = {} if tables is None else tables
    for t in cmdlines:
        key = t.context.cmdline
        if key not in tables:
            tables[key] = walk_tables(t, boot.mb.profile.mm_core_init_early_order)
        k = boot.shared_until(t, k, tables[key])
    boot.walk(k)
    return boot


def _kho_prefix(base: Trace, strategy: str, shared: int) -> Boot:
    # The KHO boot walks the same trace with the same tables: the cold prefix's length holds for it too.
    from ..kho.boot import new_boot

    boot = new_boot(base, _strategy(strategy), kernel=None, arch=None, kexec=True)
    boot.begin()
    boot.walk(min(shared, boot.first_hook()))
    return boot


def _run_chunk(trace: Trace, preserve: str, second: Trace | None, chunk: _Chunk) -> list[tuple[int, list[Row]]]:
    from ..kho.boot import Replayed, handover, plain_kexec

    out = []
    cache: dict[tuple[tuple[str, str], ...], Trace] = {}
    for idx, p in chunk.points:
        t = _point_trace(trace, p, cache)
        b = chunk.prefix.fork(t)
        if b is None:  # its decision points are planned elsewhere in the prefix: from scratch
            out.append((idx, run_point(trace, chunk.kho is not None, preserve, p, second)))
            continue
        b.walk()
        cold = Replayed(b.finish(), b.mb)
        if chunk.kho is None:
            out.append((idx, [_row(p, cold.outcome)]))
            continue
        inputs = handover(cold, _strategy(p.strategy), preserve=preserve, second=second)
        if inputs is None:
            kx = plain_kexec(cold).outcome
        else:
            k = chunk.kho.fork(t, b.current_tables(), **inputs)
            if k is None:  # as above
                out.append((idx, run_point(trace, True, preserve, p, second)))
                continue
            k.walk()
            kx = k.finish()
        out.append((idx, [_row(p, cold.outcome), _row(p, kx)]))
    return out


def _shared_prefix_map(trace: Trace, grid: Sequence[Point], *, kexec: bool, preserve: str, second: Trace | None,
                       jobs: int | None, scheduler: str | None,
                       progress: Callable[[int, int], None] | None) -> list[list[Row]]:
    """The rows of *grid*, in grid order: each strategy's prefix (cold boot, and KHO boot) runs once, here."""
    from ..kho.boot import first_difference

    groups: dict[str, list[tuple[int, Point]]] = {}
    for i, p in enumerate(grid):
        groups.setdefault(p.strategy, []).append((i, p))
    workers = 1 if scheduler is None and jobs == 1 else (jobs or default_jobs())
    chunks: list[_Chunk] = []
    cache: dict[tuple[tuple[str, str], ...], Trace] = {}
    # Each what-if's trace is built and compared once, whatever the number of strategies.
    differ: dict[tuple[tuple[tuple[str, str], ...], int | None], tuple[int, str]] = {}
    by_cmdline: dict[str, Trace] = {}
    tables: dict[str, WalkTables] = {}
    for strategy, members in groups.items():
        k = len(trace.ops)
        cmdlines: dict[str, Trace] = {}
        for _, p in members:
            key = (p.sets, p.image_at)
            if key not in differ:
                t = _point_trace(trace, p, cache)
                differ[key] = (first_difference(trace.ops, t.ops), t.context.cmdline)
                by_cmdline.setdefault(t.context.cmdline, t)
            d, cmdline = differ[key]
            k = min(k, d)
            cmdlines.setdefault(cmdline, by_cmdline[cmdline])
        prefix = _prefix_boot(trace, strategy, k, list(cmdlines.values()), tables)
        kho = _kho_prefix(trace, strategy, prefix.at) if kexec else None
        # a few chunks per worker keep them all busy to the end; each carries the prefix, not replays it
        n = max(1, min(len(members), workers * 8 * len(members) // max(1, len(grid))))
        size = -(-len(members) // n)
        chunks += [_Chunk(prefix, tuple(members[j:j + size]), kho) for j in range(0, len(members), size)]

    def tick(n: int) -> None:
        # map_points reports chunks finished in order; the caller counts points
        if progress is not None:
            progress(sum(len(c.points) for c in chunks[:n]), len(grid))

    results = map_points(functools.partial(_run_chunk, trace, preserve, second), chunks, jobs=jobs,
                         scheduler=scheduler, progress=tick if progress else None, chunksize=1)
    rows: list[list[Row]] = [[] for _ in grid]
    for part in results:
        for idx, r in part:
            rows[idx] = r
    return rows


def summary(res: SweepResult) -> list[str]:
    """One line per strategy (and boot): in how many points KHO scratch was reserved, gigantic pages placed
    and, for KHO boots, how many landed inside kernel-2 scratch."""
    lines = []
    unit = "slots" if res.swept == ("image_at",) else "points"
    for boot in ("cold", "kexec") if res.kexec else ("cold",):
        parts = []
        for s in res.strategies:
            rows = [r for r in res.rows if r.strategy == s and r.boot == boot]
            n = len(rows)
            if boot == "cold":
                ok = sum(r.scratch_reserved for r in rows)
                short = sum(r.gigantic_allocated < r.gigantic_requested for r in rows)
                text = f"{s}: KHO scratch reserved in {ok:,}/{n:,} {unit}"
                if any(r.gigantic_requested for r in rows):
                    text += f", fewer gigantic pages than asked in {short:,}/{n:,}"
            else:
                inside = [r.gigantic_in_scratch for r in rows]
                worst = max(inside, default=0)
                text = (f"{s}: gigantic pages inside kernel-2 scratch: 0 in every {unit[:-1]}" if not worst else
                        f"{s}: gigantic pages inside kernel-2 scratch in {sum(1 for x in inside if x):,}/{n:,} "
                        f"{unit} (up to {worst})")
            parts.append(text)
        lines.append(f"{boot} boot: " + "; ".join(parts))
    return lines
