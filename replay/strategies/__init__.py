# SPDX-License-Identifier: GPL-2.0-only
"""The design registry: ``baseline``, the posted series, 7.3, the maintainer's alternatives.

Each module holds one :class:`~.base.Strategy` named ``STRATEGY``.  Third
parties add theirs through the ``kho_replay.strategies`` entry-point group:
each entry point loads to a :class:`~.base.Strategy` instance (or a
zero-argument callable returning one).

>>> sorted(available())[:3]
['baseline', 'ext-scratch', 'hugetlb-alloc']
>>> get("merged").gigantic_api.value
'hugetlb'
"""

from __future__ import annotations

from importlib.metadata import entry_points

from ..errors import KhoReplayError
from . import (
    baseline,
    ext_scratch,
    hugetlb_alloc,
    inverted_ext,
    merged,
    preserve_hugetlb,
    reserve_early,
    scratch_off_early,
)
from .base import Strategy

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "Strategy", "available", "get"]

ENTRY_POINT_GROUP = "kho_replay.strategies"

#: The strategies that ship with kho-replay, in the order reports list them.
BUILTIN: dict[str, Strategy] = {
    m.STRATEGY.name: m.STRATEGY
    for m in (baseline, ext_scratch, hugetlb_alloc, merged, reserve_early, preserve_hugetlb, inverted_ext,
              scratch_off_early)
}


def _third_party() -> dict[str, Strategy]:
    found: dict[str, Strategy] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if not isinstance(obj, Strategy) and callable(obj):
            obj = obj()
        if not isinstance(obj, Strategy):
            raise KhoReplayError(f"entry point {ep.name} ({ep.value}) is not a kho-replay Strategy")
        found[obj.name] = obj
    return found


def available() -> dict[str, Strategy]:
    """Every strategy by name: the built-in ones, then those registered by entry points.

    A third-party strategy may not reuse a built-in name.

    :raises KhoReplayError: when an entry point does not give a Strategy or clashes.
    """
    out = dict(BUILTIN)
    for name, s in _third_party().items():
        if name in out:
            raise KhoReplayError(f"third-party strategy {name!r} clashes with a built-in one")
        out[name] = s
    return out


def get(name: str, options: tuple[str, ...] | frozenset[str] = ()) -> Strategy:
    """The strategy called *name*, with ``--option`` values applied.

    :raises KhoReplayError: for an unknown name or option.
    """
    table = available()
    if name not in table:
        raise KhoReplayError(f"unknown strategy {name!r} (known: {', '.join(table)})")
    return table[name].with_options(frozenset(options))
