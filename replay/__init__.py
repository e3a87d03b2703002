# SPDX-License-Identifier: GPL-2.0-only
"""Replay: the operation stream and everything that re-executes it.

Layers, each importing only those above it:

* the contract, at this level: ``ops`` (the operation stream parsers emit),
  ``flags`` (``enum memblock_flags``), ``errors``, ``profile`` (kernel eras and arches);
* ``memblock/``: the model of mm/memblock.c (``regions``, ``search``, ``engine``);
* ``kho/``: the KHO and hugetlb boot on that model (``params``, ``scratch``,
  ``preserve``, ``classify``, ``link``, ``boot``, ``outcome``, ``scenarios``);
* ``strategies/``: one design each, as small objects the boot consults;
* ``compare/``: ``validate`` (model against the log) and ``diff`` (outcome against outcome);
* ``report/``: text, JSON and HTML renderings;
* ``cli`` and ``fixtures``: the ``kho-replay`` command and the regression fixtures.
"""
