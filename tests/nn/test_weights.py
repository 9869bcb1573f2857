"""Weights files that cannot hold trained weights are refused on load, naming the file and the tensor."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tiepoint.errors import CorruptFileError, WeightsError
from tiepoint.nn.weights import load_weights


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 2, 1))


def _load(path):
    return load_weights(path, lambda _: _model(), "test model")


def test_trained_weights_load(tmp_path):
    torch.save({"model": _model().state_dict()}, tmp_path / "ok.pt")
    assert isinstance(_load(tmp_path / "ok.pt"), nn.Module)


def test_one_zero_layer_is_allowed(tmp_path):
    state = _model().state_dict()
    state["1.weight"].zero_()  # a layer initialised to zero (CLIDD's offset predictor before training)
    torch.save({"model": state}, tmp_path / "partly.pt")
    _load(tmp_path / "partly.pt")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_file_and_tensor(tmp_path, value):
    state = _model().state_dict()
    state["1.bias"][0] = value
    torch.save({"model": state}, tmp_path / "diverged.pt")
    with pytest.raises(WeightsError, match=r"diverged.pt: tensor '1.bias' holds 1 NaN or infinite"):
        _load(tmp_path / "diverged.pt")


def test_zero_filled_weights_are_refused(tmp_path):
    state = {key: torch.zeros_like(value) for key, value in _model().state_dict().items()}
    torch.save({"model": state}, tmp_path / "zeros.pt")
    with pytest.raises(WeightsError, match=r"zeros.pt: all 2 weight tensors are zeros"):
        _load(tmp_path / "zeros.pt")


def test_empty_file_says_so(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CorruptFileError, match=r"empty.pt: the file is empty \(0 bytes\)"):
        _load(tmp_path / "empty.pt")


def test_truncated_file_gives_a_reason(tmp_path):
    torch.save({"model": _model().state_dict()}, tmp_path / "full.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "full.pt").read_bytes()[:100])
    with pytest.raises(CorruptFileError, match=r"cut.pt: \S"):
        _load(tmp_path / "cut.pt")


def test_a_file_that_holds_no_state_dict(tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CorruptFileError, match="list.pt: it holds a list, not a state dict"):
        _load(tmp_path / "list.pt")


def test_clidd_with_nan_weights_is_refused(tmp_path):
    from tiepoint.features.clidd import CLIDDModel
    from tiepoint.weights import WEIGHTS_DIR

    checkpoint = torch.load(WEIGHTS_DIR / "clidd_a48.pt", map_location="cpu", weights_only=True)
    state = checkpoint.get("model", checkpoint)
    name = next(key for key, value in state.items() if value.is_floating_point() and value.ndim >= 2)
    state[name] = torch.full_like(state[name], float("nan"))
    torch.save(checkpoint, tmp_path / "nan.pt")
    with pytest.raises(WeightsError, match=f"nan.pt: tensor '{name}'"):
        CLIDDModel.from_pretrained("A48", tmp_path / "nan.pt")
