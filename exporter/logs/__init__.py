"""Log sources, the tailer, pattern scanning and their metrics."""
