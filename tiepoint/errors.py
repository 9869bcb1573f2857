"""Exceptions that tiepoint raises for bad input, so that callers can catch them by kind.

Every error names the file, parameter or method it is about. They derive from ``ValueError`` where the
input was wrong, so code that already catches ``ValueError`` keeps working.
"""


class TiepointError(Exception):
    """Base class of all tiepoint errors."""

    exit_status = 2
    """The ``tiepoint`` command's exit status when this error stops it (2: bad input)."""


class ImageError(TiepointError, ValueError):
    """An image is missing, unreadable, corrupt, empty, too small, too large or of an unsupported type."""


class UnknownMethodError(TiepointError, ValueError):
    """A method, extractor, matcher or estimator name is not registered."""


class OptionError(TiepointError, ValueError):
    """An option given to a method is unknown or has an invalid value."""


class EstimationError(TiepointError):
    """Robust estimation found no model (degenerate configuration, all outliers)."""


class NotEnoughMatchesError(EstimationError, ValueError):
    """Fewer correspondences than the requested geometric model needs."""


class OutputConflictError(OptionError):
    """An output file already holds results made another way; resuming into it would mix them.

    ``reason`` says what differs and ``path`` which file; the message adds how to replace it, which a caller
    with other options (such as :func:`~tiepoint.pipeline.reconstruct.reconstruct`) may say differently.
    """

    def __init__(self, path: object, reason: str, advice: str = "") -> None:
        advice = advice or "pass overwrite=True (--overwrite) to compute it again, or choose another output"
        super().__init__(f"{reason}; {advice}")
        self.path, self.reason = path, reason


class DatasetError(TiepointError, ValueError):
    """A benchmark dataset folder or pairs file is missing or malformed."""


class WeightsError(TiepointError):
    """A weights file is missing, corrupt or does not fit the model."""


class CorruptFileError(TiepointError, OSError):
    """An HDF5 file cannot be opened or read (corrupt, truncated or not HDF5 at all)."""


class NoImagesError(TiepointError, ValueError):
    """A folder, list file or list of images names no image."""


class MissingDependencyError(TiepointError, ImportError):
    """An optional dependency is not installed; the message names the pip extra that brings it."""
