"""Efficient LoFTR: shapes, window bookkeeping, lossless folding, any image size, shipped weights."""

import numpy as np
import pytest
import torch

from tiepoint.errors import OptionError, WeightsError
from tiepoint.matchers.eloftr import CELL, EfficientLoFTR, ELoFTRConfig, _pointwise, weights_path

TINY = ELoFTRConfig(widths=(8, 8, 16, 32), blocks=(1, 1, 1, 1), heads=2, layers=1, fine_widths=(16, 8, 8))


def _model() -> EfficientLoFTR:
    torch.manual_seed(0)
    return EfficientLoFTR(TINY).eval()


def test_forward_batches_of_pairs_of_different_sizes():
    model = _model()
    image0, image1 = torch.rand(2, 1, 64, 96), torch.rand(2, 1, 96, 64)
    with torch.no_grad():
        coarse0, coarse1, fine0, fine1 = model.features(image0, image1)
        output = model(image0, image1, threshold=0.0)
    assert coarse0.shape == (2, 32, 8, 12) and coarse1.shape == (2, 32, 12, 8)
    assert fine0.shape == (2, 8, 64, 96) and fine1.shape == (2, 8, 96, 64)
    m = len(output["batch"])
    assert m > 0 and set(output["batch"].tolist()) <= {0, 1}
    assert output["keypoints0"].shape == output["keypoints1"].shape == (m, 2) and output[
        "confidence"
    ].shape == (m,)
    k0, k1 = output["keypoints0"], output["keypoints1"]
    assert (k0 >= 0).all() and (k0[:, 0] <= 95).all() and (k0[:, 1] <= 63).all()
    assert (k1 > -1).all() and (k1[:, 0] < 64).all() and (k1[:, 1] < 96).all()
    assert torch.equal(k0, k0.round())  # image-0 keypoints are pixels; image 1 is sub-pixel


def test_each_image0_cell_matches_at_most_once():
    model = _model()
    with torch.no_grad():
        output = model(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64), threshold=0.0)
    cells = (output["keypoints0"] // CELL).long()
    assert len({tuple(c) for c in cells.tolist()}) == len(cells)


def test_optimized_mode_is_mutual_nearest_neighbours_of_the_similarity():
    model = _model()
    image0, image1 = torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        similarity = model.similarity(*model.features(image0, image1)[:2])[0]
        output = model(image0, image1, optimized=True, raw_threshold=-100.0)
    mutual = (similarity == similarity.max(1, keepdim=True).values) & (
        similarity == similarity.max(0, keepdim=True).values
    )
    assert len(output["confidence"]) == int(mutual.sum())
    assert ((output["confidence"] > 0) & (output["confidence"] <= 1)).all()


def test_default_mode_is_mutual_nearest_neighbours_of_the_dual_softmax():
    model = _model()
    image0, image1 = torch.rand(1, 1, 64, 96), torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        similarity = model.similarity(*model.features(image0, image1)[:2])[0]
        output = model(image0, image1, threshold=0.0)
        cut = float(output["confidence"].median())
        some = model(image0, image1, threshold=cut)
    p = torch.softmax(similarity, 0) * torch.softmax(similarity, 1)  # the dual-softmax, formed here only
    mutual = (p == p.max(1, keepdim=True).values) & (p == p.max(0, keepdim=True).values)
    index0, index1 = torch.nonzero(mutual, as_tuple=True)
    cells0 = (output["keypoints0"] // CELL).long()
    assert len(output["confidence"]) == len(index0) > 0
    assert torch.equal(cells0[:, 1] * 12 + cells0[:, 0], index0)  # image 0 is 12 cells wide, row-major order
    torch.testing.assert_close(output["confidence"], p[index0, index1], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(some["confidence"], output["confidence"][output["confidence"] > cut])


def test_pointwise_is_the_one_by_one_convolution():
    torch.manual_seed(0)
    x, add = torch.randn(2, 6, 5, 7), torch.randn(2, 4, 5, 7)
    for bias in (True, False):
        conv = torch.nn.Conv2d(6, 4, 1, bias=bias)
        with torch.no_grad():
            torch.testing.assert_close(_pointwise(conv, x), conv(x))
            torch.testing.assert_close(_pointwise(conv, x, add=add), conv(x) + add)


def test_windows_read_the_cells_and_their_margin():
    fine0 = torch.arange(2 * 16 * 24, dtype=torch.float32).reshape(2, 1, 16, 24)
    fine1 = fine0 + 1000
    batch, cell0, cell1 = torch.tensor([1]), torch.tensor([[2, 1]]), torch.tensor([[0, 1]])
    window0, window1 = EfficientLoFTR.windows(fine0, fine1, batch, cell0, cell1)
    assert window0.shape == (1, 64, 1) and window1.shape == (1, 100, 1)
    torch.testing.assert_close(window0[0, :, 0].reshape(8, 8), fine0[1, 0, 8:16, 16:24])
    grid = window1[0, :, 0].reshape(10, 10)
    torch.testing.assert_close(grid[:9, 1:], fine1[1, 0, 7:16, 0:9])  # rows 7..15, columns 0..8
    assert (grid[:, 0] == 0).all() and (grid[9] == 0).all()  # left of and below the image: zero padding
    torch.testing.assert_close(EfficientLoFTR.inner(window1)[0, :, 0].reshape(8, 8), fine1[1, 0, 8:16, 0:8])


def test_subpixel_expectation_follows_the_correlation():
    feature = torch.tensor([[[1.0, 0.0]]])  # (M=1, K=1, C=2)
    neighbourhood = torch.zeros(1, 1, 9, 2)
    neighbourhood[0, 0, 5] = torch.tensor([50.0, 0.0])  # the right neighbour (dx = +1, dy = 0) dominates
    offset = EfficientLoFTR.subpixel(feature, neighbourhood)
    torch.testing.assert_close(offset, torch.tensor([[[1.0, 0.0]]]), atol=1e-3, rtol=0)


def test_stage_two_moves_stage_one_pixels_by_less_than_one_pixel():
    model = _model()
    image0, image1 = torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        _, _, fine0, fine1 = model.features(image0, image1)
        batch, cell0, cell1 = (
            torch.zeros(5, dtype=torch.long),
            torch.randint(0, 8, (5, 2)),
            torch.randint(0, 8, (5, 2)),
        )
        pixels0, pixels1 = model.refine(fine0, fine1, batch, cell0, cell1, subpixel=False)
        keypoints0, keypoints1 = model.refine(fine0, fine1, batch, cell0, cell1)
    assert torch.equal(pixels0, keypoints0) and torch.equal(pixels1, pixels1.round())
    assert ((pixels1 // CELL).long() == cell1).all()  # stage 1 stays inside the matched cell
    assert ((keypoints1 - pixels1).abs() < 1).all()


def test_keypoints_keep_full_precision_under_half_precision_autocast():
    model = _model()
    image0, image1 = torch.rand(1, 1, 64, 544), torch.rand(1, 1, 64, 544)
    cells = torch.tensor([[64, 1], [65, 2], [66, 3]])  # pixels 512..535: bfloat16 steps by 4 px there
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        _, _, fine0, fine1 = model.features(image0, image1)
        keypoints0, keypoints1 = model.refine(fine0, fine1, torch.zeros(3, dtype=torch.long), cells, cells)
    assert fine0.dtype == torch.bfloat16  # the features are half precision, the keypoints are not
    assert keypoints0.dtype == keypoints1.dtype == torch.float32
    assert ((keypoints0 // CELL).long() == cells).all()
    assert (keypoints0 % 4 != 0).any() or (keypoints1 % 1 != 0).any()  # not rounded to bfloat16's 4 px steps


def test_reparameterized_model_gives_the_same_matches():
    model = _model()
    for norm in model.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):
            norm.running_mean.uniform_(-0.2, 0.2)
            norm.running_var.uniform_(0.5, 1.5)
    image0, image1 = torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        before = model(image0, image1, threshold=0.0)
        after = model.reparameterize()(image0, image1, threshold=0.0)
    torch.testing.assert_close(after["keypoints0"], before["keypoints0"])
    torch.testing.assert_close(after["keypoints1"], before["keypoints1"], atol=1e-4, rtol=0)


def test_bad_sizes_are_rejected():
    model = _model()
    with pytest.raises(OptionError, match="multiples of 32"):
        model(torch.rand(1, 1, 60, 64), torch.rand(1, 1, 64, 64))
    with pytest.raises(OptionError, match="grayscale"):
        model(torch.rand(1, 3, 64, 64), torch.rand(1, 1, 64, 64))
    with pytest.raises(OptionError, match="unknown Efficient LoFTR config"):
        EfficientLoFTR("huge")


def test_full_config_is_named_but_not_shipped():
    assert EfficientLoFTR("full").config.dim == 256 and EfficientLoFTR("full").config.layers == 4
    if not weights_path("full").is_file():
        with pytest.raises(WeightsError, match="full"):
            EfficientLoFTR.from_pretrained("full")


@pytest.mark.skipif(not weights_path("small").is_file(), reason="no shipped eloftr_small weights")
def test_matcher_returns_original_pixels(stereo_pair):
    import tiepoint

    matches = tiepoint.match(stereo_pair.image0, stereo_pair.image1, method="eloftr", resize=320)
    width, height = matches.image_size0
    assert matches.method == "eloftr" and len(matches) > 20
    assert (matches.keypoints0[:, 0] <= width).all() and (matches.keypoints0[:, 1] <= height).all()
    assert np.all(np.diff(matches.scores) <= 0)  # sorted by confidence
    few = tiepoint.match(
        stereo_pair.image0, stereo_pair.image1, method="eloftr-opt", resize=320, max_keypoints=10
    )
    assert len(few) == 10 and few.method == "eloftr-opt"
    finer = tiepoint.match(stereo_pair.image0, stereo_pair.image1, method="eloftr", resize=160, upsample=2)
    assert finer.image_size0 == matches.image_size0 and len(finer) > 20
    assert (finer.keypoints1[:, 0] <= width).all() and (finer.keypoints1[:, 1] <= height).all()
    with pytest.raises(OptionError, match="upsample"):
        tiepoint.match(stereo_pair.image0, stereo_pair.image1, method="eloftr", upsample=0.5)
    with pytest.raises(OptionError, match="min_contrast"):
        tiepoint.match(stereo_pair.image0, stereo_pair.image1, method="eloftr", min_contrast=-0.1)


@pytest.mark.skipif(not weights_path("small").is_file(), reason="no shipped eloftr_small weights")
@pytest.mark.parametrize("method", ["eloftr", "eloftr-opt"])
def test_blank_images_give_no_matches(method):
    import tiepoint

    blank = np.full((240, 320), 128, np.uint8)
    assert len(tiepoint.match(blank, blank, method=method)) == 0
    assert len(tiepoint.match(blank, blank, method=method, min_contrast=0)) > 0  # what the network alone does


def test_no_coarse_match_gives_empty_outputs():
    model = _model()
    with torch.no_grad():
        output = model(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64), threshold=0.999)
    assert output["keypoints0"].shape == (0, 2) and output["keypoints1"].shape == (0, 2)


def test_flat_cells_take_no_part_in_the_matching():
    model = _model()
    generator = torch.Generator().manual_seed(1)
    image0, image1 = (
        torch.rand(1, 1, 64, 64, generator=generator),
        torch.rand(1, 1, 64, 64, generator=generator),
    )
    image0[..., :32] = 0.5  # the left four columns of cells are flat
    image1[..., 32:, :] = 0.25  # the lower four rows of cells are flat
    with torch.no_grad():
        every = model(image0, image1, threshold=0.0, min_contrast=0)
        gated = model(image0, image1, threshold=0.0)

    def in_flat_cells(output):  # image-0 keypoints are pixels; stage 2 moves image-1 keypoints by up to 1 px
        return (output["keypoints0"][:, 0] < 32) | (output["keypoints1"][:, 1] > 32 + 1)

    assert in_flat_cells(every).any()
    assert len(gated["batch"]) > 0 and not in_flat_cells(gated).any()
    optimized = model(image0, image1, optimized=True, raw_threshold=-100.0)
    assert (optimized["keypoints0"][:, 0] >= 32).all()
    blank = model(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64), threshold=0.0)
    assert blank["keypoints0"].shape == (0, 2)
