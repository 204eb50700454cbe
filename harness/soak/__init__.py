"""`tts-sentinel soak`: a sequence of faults on the real loopback stack, scored per incident and against a baseline."""
