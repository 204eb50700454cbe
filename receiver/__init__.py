"""The TTS Sentinel receiver: Alertmanager webhook → policy → actuator → journal → verification."""
