# SPDX-License-Identifier: GPL-2.0-only
"""Pause Python's cyclic garbage collector while a trace is read or replayed.

A million-op replay allocates millions of small objects (ops, ``Src`` records,
region entries) that form no reference cycles; each of the collector's passes
walks all of them, which costs 10-15% of a read or a replay and grows with the
stream.  Reference counting still frees everything as usual; the collector
runs again (if it was on) when the outermost pause ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the ``with`` block with the cyclic collector off; nested pauses are fine."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
