"""Where this project keeps its data and records: the shared evaluation data beside the repository, and the
committed benchmark outputs."""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
"""The repository's root folder (the lab is used from a checkout, not from an installed wheel)."""

BENCHMARKS = REPOSITORY / "benchmarks"
"""The committed benchmark outputs that ``docs/`` tables are generated from."""


def shared_data() -> Path:
    """The shared data folder: ``$TIEPOINT_DATA`` when set, else ``../shared/data`` beside the repository."""
    value = os.environ.get("TIEPOINT_DATA")
    return Path(value) if value else REPOSITORY.parent / "shared" / "data"


def photo_list() -> Path:
    """The photo list the training corpus is built from."""
    return shared_data() / "photos.tsv"
