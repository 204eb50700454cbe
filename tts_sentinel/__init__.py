"""TTS Sentinel: keeps a GPU text-to-speech service speaking, 24x7."""

__version__ = "0.1.0"
