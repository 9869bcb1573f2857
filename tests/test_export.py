"""ONNX export of CLIDD, checked with onnxruntime on a real image."""

import pytest
import torch

from tiepoint.errors import OptionError
from tiepoint.export import check_onnx, export_clidd
from tiepoint.features.clidd import CLIDDModel

pytest.importorskip("onnxruntime", reason="the export extra is not installed")


def _model():
    torch.manual_seed(0)
    model = CLIDDModel("N64").eval()
    for parameter in model.predictor.parameters():  # non-zero offsets, as after training
        torch.nn.init.normal_(parameter, std=0.3)
    return model


def test_onnx_export_agrees_with_pytorch(tmp_path, stereo_pair):
    model = _model()
    path = export_clidd(tmp_path / "n64.onnx", model=model, image_size=(240, 320), max_keypoints=256)
    assert path.is_file() and not model.training
    check = check_onnx(path, model, stereo_pair.image0)
    assert check.keypoints == 256 and check.shared > 0.8 and check.max_score_error < 1e-5
    assert check.max_keypoint_error < 1e-3
    assert check.max_descriptor_error < 1e-4


def test_shipped_weights_export(tmp_path, stereo_pair):
    model = CLIDDModel.from_pretrained("T64")
    path = export_clidd(tmp_path / "t64.onnx", model=model, image_size=(480, 640), max_keypoints=2048)
    check = check_onnx(path, model, stereo_pair.image0)
    # the stereo pair's flat regions give exactly tied scores, which the runtimes break differently
    assert check.max_score_error < 1e-5 and check.shared > 0.8
    assert check.max_keypoint_error < 1e-2 and check.max_descriptor_error < 1e-3


def test_export_rejects_impossible_budgets(tmp_path):
    with pytest.raises(OptionError, match="max_keypoints"):
        export_clidd(tmp_path / "x.onnx", model=_model(), image_size=(64, 64), max_keypoints=1000)
