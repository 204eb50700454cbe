"""`tts-sentinel triage --since 10m`: what happened in the last minutes, and its root cause.

The seed's one-liner (zcat | cat | sed | grep | sort | head) reads every archive in
full and its sed range never matches as written. Here each log's current file and
rotated generations (plain and .gz) are read only where the window can be: a plain
file is entered by binary search on its timestamps (`seek`), an archive last written
before the window starts is skipped by its modification time (`diagnosis`). Command
output is read like a file (`history`). Matching lines are merged, sorted by time, and
cause -> effect rules from the config name the root cause (`verdict`).
"""

from tts_sentinel.loghistory.triage.clock import parse_duration
from tts_sentinel.loghistory.triage.diagnosis import collect_events, diagnose
from tts_sentinel.loghistory.triage.verdict import explain, format_verdict

__all__ = ["collect_events", "diagnose", "explain", "format_verdict", "parse_duration"]
