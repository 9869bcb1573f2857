"""Loading a network's weights file with clear errors (shared by the learned models)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CorruptFileError, WeightsError
from ..weights import WEIGHTS_DIR

__all__ = ["load_weights", "load_with_architecture"]


def load_weights(
    path: Path, build: Callable[[dict[str, Any]], nn.Module], what: str, missing_hint: str = ""
) -> nn.Module:
    """A model built by ``build(checkpoint)`` with the checkpoint's ``"model"`` state, in eval mode.

    Args:
        path: the weights file, a dict holding ``"model"`` (a state dict) and optionally the architecture.
        build: makes the untrained model from the loaded checkpoint dict.
        what: the model's name in error messages.
        missing_hint: appended to the message when the file is missing (e.g. how to train it).

    Raises:
        WeightsError: no file at ``path``.
        CorruptFileError: the file is unreadable or does not fit the architecture.
    """
    if not path.is_file():
        raise WeightsError(f"no {what} weights at {path}{'; ' + missing_hint if missing_hint else ''}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = checkpoint.get("model", checkpoint)
        model = build(checkpoint)
        model.load_state_dict(state)
    except Exception as error:
        raise CorruptFileError(f"cannot load {what} weights from {path}: {error}") from error
    return model.eval()


def load_with_architecture(
    model: Callable[[Any], nn.Module], config: type, path: str | Path | None, name: str, what: str, hint: str
) -> Any:
    """``model(config(**architecture))`` with the weights at ``path`` (default: the shipped
    ``tiepoint/weights/<name>.pt``), in eval mode; the architecture is the one stored with the weights.

    Args:
        what, hint: the model's name in error messages and how to get missing weights (see
            :func:`load_weights`).

    Raises:
        WeightsError: no weights file at the path.
        CorruptFileError: the file is unreadable or does not fit the architecture.
    """
    path = Path(path) if path is not None else WEIGHTS_DIR / f"{name}.pt"
    return load_weights(path, lambda checkpoint: model(config(**_architecture(checkpoint))), what, hint)


def _architecture(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The architecture stored with shipped weights (lists back to tuples); empty for trainer checkpoints."""
    return {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in checkpoint.get("config", {}).items()
    }
