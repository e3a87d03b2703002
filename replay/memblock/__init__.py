# SPDX-License-Identifier: GPL-2.0-only
"""The model of mm/memblock.c: ``regions`` (one ``struct memblock_type`` and its gap
index), ``search`` (``__next_mem_range[_rev]()`` and ``memblock_find_in_range_node()``)
and ``engine`` (the memblock API over ``memory`` and ``reserved``)."""
