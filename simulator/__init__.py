"""A stand-in TTS service with fault injection, for the demo, the tests and drills."""
