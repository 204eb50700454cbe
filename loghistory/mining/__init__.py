"""Log template mining with Drain3: offline (`tts-sentinel mine`) and online (the exporter learns).

masks (what varies in a line) -> lines (WARN/ERROR lines, level and body) -> miner (Drain3 clusters
and their counts) -> state (our JSON) ; learned (the learned-patterns file), offline + report (the
weekly report), config (`exporter.logs.learning`).
"""
