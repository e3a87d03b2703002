# SPDX-License-Identifier: GPL-2.0-only
"""Presentation of comparisons: ``text`` (bloat-o-meter style tables) and ``html``
(one self-contained page with memory maps)."""
