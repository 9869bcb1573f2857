"""Loading a network's weights file with clear errors (shared by the learned models)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CorruptFileError, WeightsError

__all__ = ["load_weights"]


def load_weights(path: Path, build: Callable[[dict[str, Any]], nn.Module], what: str, missing_hint: str = "") -> nn.Module:
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
