"""Matchers: descriptor matchers and pair matchers."""
