"""The weights shipped with the package, each ``NAME.pt`` beside its training record ``NAME.json`` (data,
steps, command, commit, benchmark scores). Models find their files through ``WEIGHTS_DIR``; nothing here
imports torch."""

from pathlib import Path

__all__ = ["WEIGHTS_DIR", "glue_extractors"]

WEIGHTS_DIR = Path(__file__).resolve().parent


def glue_extractors() -> list[str]:
    """The extractors whose Glue weights ship (``glue_<extractor>.pt``, the name's ``-`` written ``_``)."""
    return [
        path.stem.removeprefix("glue_").replace("_", "-") for path in sorted(WEIGHTS_DIR.glob("glue_*.pt"))
    ]
