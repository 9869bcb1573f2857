"""The weights shipped with the package, each ``NAME.pt`` beside its training record ``NAME.json`` (data,
steps, command, commit, benchmark scores). Models find their files through ``WEIGHTS_DIR``; nothing here
imports torch."""

from pathlib import Path

__all__ = ["WEIGHTS_DIR"]

WEIGHTS_DIR = Path(__file__).resolve().parent
