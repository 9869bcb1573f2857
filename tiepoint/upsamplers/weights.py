"""Shipped upsampler weights: ``tiepoint/weights/upsampler_<backbone>_<method>.pt`` with a JSON training
record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..nn.weights import load_weights
from ..weights import WEIGHTS_DIR
from . import TRAINED, Upsampler, build_upsampler


def weights_path(backbone: str, method: str) -> Path:
    """Where the weights of ``method`` trained on ``backbone`` live."""
    return WEIGHTS_DIR / f"upsampler_{backbone}_{method}.pt"


def training_record(backbone: str, method: str) -> dict[str, Any]:
    """The training record shipped beside the weights (empty when there is none)."""
    path = weights_path(backbone, method).with_suffix(".json")
    return json.loads(path.read_text()) if path.is_file() else {}


def from_pretrained(method: str, backbone: str, dim: int, path: str | Path | None = None) -> Upsampler:
    """An upsampler in eval mode: the baselines as they are, the learned ones with shipped (or given) weights.

    Raises:
        WeightsError: no weights ship for this backbone and method.
        CorruptFileError: the file is unreadable or does not fit the model.
    """
    model = build_upsampler(method, dim)
    if method in TRAINED:
        path = Path(path) if path is not None else weights_path(backbone, method)
        hint = f"train them with `tiepoint-lab train upsampler --backbone {backbone} --method {method}`"
        model = load_weights(path, lambda _: model, f"{method} ({backbone}, {dim}-channel features)", hint)
    return model.eval().requires_grad_(False)
