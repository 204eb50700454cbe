"""The onboarding floor: what `init`, `doctor` and `deploy` do, below their commands.

It reads the whole config (it sits above `tts_sentinel.config`) and calls the libraries' own
clients and models; no library imports it. See ARCHITECTURE.md.
"""
