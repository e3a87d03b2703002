# SPDX-License-Identifier: GPL-2.0-only
"""Replay: a faithful model of the kernel's memblock allocator and what runs on it.

Modules, one idea each: ``ops`` (the operation stream, the contract with the
parsers), ``flags``, ``errors``, ``profile`` (version and arch differences),
``regions`` (one ``struct memblock_type``), ``engine`` (the memblock API),
``cli`` (the ``kho-replay`` command).
"""
