"""Probe modules (L1 health, L2 synthesis, L3 semantic, quality), one file per kind."""
