"""Helpers for dataset tests."""

# A bank of 2 voices x 2 rates x 1 pitch x 10 words: synthesized in well under a second.
SMALL_BANK = {"voices": ["en+m1", "en-us+f3"], "rates": [150, 220], "pitches": [50]}
