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


@pytest.mark.slow
def test_eloftr_onnx_export_agrees_with_pytorch(tmp_path, stereo_pair):
    from tiepoint.export import check_onnx_pair, export_eloftr
    from tiepoint.matchers.eloftr import EfficientLoFTR, ELoFTRConfig

    torch.manual_seed(0)
    config = ELoFTRConfig(
        widths=(8, 8, 16, 32), blocks=(1, 1, 1, 1), heads=2, layers=1, fine_widths=(16, 8, 8)
    )
    model = EfficientLoFTR(config).eval()
    path = export_eloftr(tmp_path / "eloftr.onnx", model=model, image_size=(96, 128), threshold=0.0)
    assert path.is_file() and not model.training
    # the graph is traced on random images: another pair has another number of matches
    check = check_onnx_pair(path, model, stereo_pair.image0, stereo_pair.image1, threshold=0.0)
    assert check.matches == check.reference_matches > 0 and check.shared == 1.0
    assert check.max_keypoint_error < 1e-3 and check.max_confidence_error < 1e-4
    with pytest.raises(OptionError, match="multiples of 32"):
        export_eloftr(tmp_path / "x.onnx", model=model, image_size=(100, 128))


def test_glue_onnx_export_takes_any_keypoint_counts(tmp_path):
    import numpy as np

    from tiepoint.export import check_onnx_glue, export_glue
    from tiepoint.matchers.glue import Glue, GlueConfig
    from tiepoint.types import Features

    torch.manual_seed(0)
    architecture = {"input_dim": 16, "dim": 16, "heads": 2, "layers": 2}
    net = Glue(GlueConfig(**architecture, filter_threshold=0.01))
    with torch.no_grad():  # lean on the descriptors, so that the pairs match
        net.input_proj.weight.copy_(torch.eye(16))
        for assignment in net.assignment:
            assignment.project.weight.copy_(4 * torch.eye(16))
    weights = tmp_path / "glue.pt"
    torch.save({"model": net.state_dict(), "config": architecture}, weights)
    path = export_glue(tmp_path / "glue.onnx", weights=weights)
    rng = np.random.default_rng(0)
    descriptors = rng.standard_normal((100, 16)).astype(np.float32)
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)

    def features(rows):
        keypoints = (rng.random((len(rows), 2)) * 100).astype(np.float32)
        return Features(keypoints, np.ones(len(rows), np.float32), descriptors[rows], (100, 100))

    check = check_onnx_glue(path, Glue.from_pretrained(path=weights), features(np.arange(100)),
                            features(rng.permutation(100)[:77]))  # fmt: skip
    assert check.matches > 10 and check.same == 1.0 and check.max_score_error < 1e-4
