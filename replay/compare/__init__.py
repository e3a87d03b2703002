# SPDX-License-Identifier: GPL-2.0-only
"""Checks: ``validate`` (the model against what a real boot printed) and ``diff``
(one outcome against another, request by request and metric by metric)."""
