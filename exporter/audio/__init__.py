"""Audio decoding and checks with numpy: WAV parsing, L2 validity, F0 contours, quality."""
