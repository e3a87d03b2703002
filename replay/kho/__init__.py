# SPDX-License-Identifier: GPL-2.0-only
"""Kexec HandOver and gigantic hugetlb pages on the memblock model.

``params`` (``kho=``, ``kho_scratch=``), ``scratch`` (``kho_reserve_scratch()``,
``kho_populate()``), ``preserve`` (preserved memory, the 7.3 extension digest),
``classify`` (caller to subsystem), ``link`` (fixed-address ops that follow an
allocation), ``boot`` (a boot re-run under a design, cold or KHO), ``outcome``
(what a kernel developer asks of a boot), ``scenarios`` (synthesized op streams).
"""
