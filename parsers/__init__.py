# SPDX-License-Identifier: GPL-2.0-only
"""Parsers: what real machines produce, read into a :class:`~kho_replay.replay.ops.Trace`."""
