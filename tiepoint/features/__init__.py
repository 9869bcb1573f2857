"""Keypoint extractors: one module per family."""
