# SPDX-License-Identifier: GPL-2.0-only
"""Presentation: ``text`` (bloat-o-meter style tables, the ``kho`` listing), ``json`` (every JSON
document, one convention), ``html`` (one self-contained page with memory maps) and ``units`` (sizes
and addresses as all three print them; a leaf the lower layers may use for their one-line verdicts)."""
