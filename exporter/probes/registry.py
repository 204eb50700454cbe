"""Prober kinds by name (the `prober:` of a module). Adding a kind: one file, one line here.

Modules are imported on first use: the L3 prober pulls in pyworld and dtaidistance,
which an exporter with only L1/L2 enabled need not load.
"""

from __future__ import annotations

import importlib

from tts_sentinel.exporter.probes.prober import Prober

PROBERS: dict[str, str] = {
    "health": "tts_sentinel.exporter.probes.health",
    "synthesis": "tts_sentinel.exporter.probes.synthesis",
    "semantic": "tts_sentinel.exporter.probes.semantic",
    "quality": "tts_sentinel.exporter.probes.quality",
    "streaming": "tts_sentinel.exporter.probes.streaming",
}


def prober_for(kind: str) -> Prober:
    """The Prober of kind `kind` (KeyError names the known kinds)."""
    if kind not in PROBERS:
        raise KeyError(f"unknown prober {kind!r}; known: {', '.join(PROBERS)}")
    return importlib.import_module(PROBERS[kind]).PROBER
