"""Upsamplers: the baselines equal interpolation, queries equal full maps, shapes, invariants, weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tiepoint.errors import OptionError, UnknownMethodError, WeightsError
from tiepoint.upsamplers import METHODS, FeatSharp, build_upsampler
from tiepoint.upsamplers.base import neighbourhood
from tiepoint.upsamplers.weights import from_pretrained

DIM = 8


def inputs(batch=2, h=4, w=6, stride=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, h * stride, w * stride, generator=generator)
    features = torch.randn(batch, DIM, h, w, generator=generator)
    tiled = torch.randn(batch, DIM, 2 * h, 2 * w, generator=generator)
    return image, features, tiled


def trained_like(method):
    """An upsampler with random (not zero-initialised) weights, so that every part takes part."""
    torch.manual_seed(0)
    model = build_upsampler(method, DIM)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_baselines_equal_interpolation(mode):
    image, features, _ = inputs()
    out = build_upsampler(mode, DIM)(image, features)
    expected = F.interpolate(features, size=image.shape[-2:], mode=mode, align_corners=False)
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_any_size_batches_and_chunking(method):
    image, features, tiled = inputs()
    model = trained_like(method)
    with torch.no_grad():
        full = model(image, features, size=(20, 30), tiled=tiled)
        chunked = model(image, features, size=(20, 30), tiled=tiled, chunk=77)
        single = model(image[1:], features[1:], size=(20, 30), tiled=tiled[1:])
    assert full.shape == (2, DIM, 20, 30)
    assert torch.allclose(full, chunked, atol=1e-5)
    assert torch.allclose(full[1:], single, atol=1e-5)  # batch items are independent


@pytest.mark.parametrize("method", METHODS)
def test_query_equals_full_map_at_pixels(method):
    image, features, tiled = inputs(batch=1)
    model = trained_like(method)
    points = torch.tensor([[[0.0, 0.0], [5.0, 7.0], [47.0, 31.0], [20.0, 13.0]]])
    with torch.no_grad():
        full = model(image, features, tiled=tiled)
        queried = model.query(model.prepare(image, features, tiled), points)[0]
    expected = full[0, :, points[0, :, 1].long(), points[0, :, 0].long()].T
    assert torch.allclose(queried, expected, atol=1e-5)


@pytest.mark.parametrize("method", ["jbu", "loftup"])
def test_constant_features_stay_constant(method):
    """JBU and LoftUp (at initialisation) average the window's features: a constant map stays constant."""
    image, features, _ = inputs()
    constant = torch.ones_like(features) * torch.arange(DIM, dtype=torch.float32).view(1, DIM, 1, 1)
    with torch.no_grad():
        out = build_upsampler(method, DIM)(image, constant, size=(10, 10))
    assert torch.allclose(out, constant[..., :1, :1].expand_as(out), atol=1e-5)


def test_featsharp_starts_as_jbu_on_the_fused_grid_and_needs_tiles():
    image, features, tiled = inputs(batch=1)
    model = FeatSharp(DIM).eval()
    with torch.no_grad():
        state = model.prepare(image, features, tiled)
        centres = torch.tensor([[[1.5, 1.5], [9.5, 17.5]]])  # fused cells are 4 px wide, centred at 4 k + 1.5
        jbu = model.jbu.query(model.jbu.prepare(image, features), centres)
        assert torch.allclose(model.query(state, centres), jbu, atol=1e-5)
    with pytest.raises(OptionError, match="tiled"):
        model(image, features)
    with pytest.raises(OptionError, match="tiled must be"):
        model(image, features, tiled=tiled[..., :-1])


def test_neighbourhood_offsets_and_validity():
    features = torch.arange(12, dtype=torch.float32).reshape(1, 1, 3, 4)
    values, offsets, valid, index = neighbourhood(features, torch.tensor([[[3.5, 3.5]]]), stride=8, size=3)
    # pixel (3.5, 3.5) is the centre of cell (0, 0): its 3x3 window starts one cell up-left, outside the map
    assert valid[0, 0].tolist() == [False, False, False, False, True, True, False, True, True]
    assert torch.allclose(offsets[0, 0, 4], torch.zeros(2))
    assert values[0, 0, 5, 0] == 1.0 and values[0, 0, 7, 0] == 4.0
    assert index[0, 0, 5] == 1 and index[0, 0, 7] == 4


@pytest.mark.parametrize("method", ["jbu", "loftup"])
def test_inference_sums_equal_training_sums(method):
    """Without gradients the window sums use a sparse product; with them, a gather: the same numbers."""
    image, features, _ = inputs()
    model = trained_like(method)
    points = torch.rand(2, 50, 2) * torch.tensor([47.0, 31.0])
    with torch.no_grad():
        sparse = model.query(model.prepare(image, features), points)
    dense = model.query(model.prepare(image, features), points)
    assert dense.requires_grad and torch.allclose(sparse, dense.detach(), atol=1e-5)


def test_input_checks():
    image, features, _ = inputs()
    model = build_upsampler("bilinear", DIM)
    with pytest.raises(OptionError, match="integer multiple"):
        model(image[..., :-3], features)
    with pytest.raises(OptionError, match=r"\(B, 3, H, W\)"):
        model(image[:, :2], features)
    with pytest.raises(UnknownMethodError, match="loftup"):
        build_upsampler("nearest", DIM)


def test_weights_missing_or_wrong(tmp_path):
    with pytest.raises(WeightsError, match="tiepoint-lab train upsampler"):
        from_pretrained("jbu", "none", DIM, tmp_path / "absent.pt")
    torch.save({"model": {"nothing": torch.zeros(1)}}, tmp_path / "bad.pt")
    from tiepoint.errors import CorruptFileError

    with pytest.raises(CorruptFileError, match="cannot load"):
        from_pretrained("jbu", "none", DIM, tmp_path / "bad.pt")
    model = build_upsampler("loftup", DIM)
    torch.save({"model": model.state_dict()}, tmp_path / "good.pt")
    loaded = from_pretrained("loftup", "none", DIM, tmp_path / "good.pt")
    assert not loaded.training and all(not p.requires_grad for p in loaded.parameters())


def test_every_shipped_weight_file_loads_with_its_record():
    import json

    from tiepoint.backbones.dinov2 import DINOv2S
    from tiepoint.backbones.efficientnet import EfficientNetLite0
    from tiepoint.weights import WEIGHTS_DIR

    dims = {"dinov2s": DINOv2S.dim, "effl0": EfficientNetLite0.dim}
    shipped = sorted(WEIGHTS_DIR.glob("upsampler_*.pt"))
    assert shipped, "no upsampler weights ship"
    for path in shipped:
        _, backbone, method = path.stem.split("_")
        model = from_pretrained(method, backbone, dims[backbone])
        assert sum(p.numel() for p in model.parameters()) > 1000
        record = json.loads(path.with_suffix(".json").read_text())
        assert record["backbone"] == backbone and record["method"] == method and record["steps"] > 0
