"""The CLIDD architecture: sizes, shapes, invariants, fused and reference samplers, weight files."""

import numpy as np
import pytest
import torch

from tiepoint.errors import CorruptFileError, OptionError, WeightsError
from tiepoint.features.clidd import SIZES, CLIDDModel, parameter_count


def test_nine_sizes_from_atom_to_ultra():
    assert len(SIZES) == 9
    counts = [parameter_count(name) for name in SIZES]
    assert counts == sorted(counts)
    assert 4000 <= counts[0] <= 4500  # "A48": about 4.2 thousand
    assert 4.2e6 <= counts[-1] <= 4.6e6  # "U128": about 4.4 million
    assert SIZES["A48"].descriptor_dim == 48 and SIZES["U128"].descriptor_dim == 128


@pytest.mark.parametrize("size", ["A48", "N64"])
def test_forward_shapes_and_normalisation(size):
    torch.manual_seed(0)
    model = CLIDDModel(size).eval()
    image = torch.rand(2, 3, 75, 101)  # not a multiple of 16
    with torch.no_grad():
        levels, logits = model.features(image)
        output = model(image, max_keypoints=50)
    assert logits.shape == (2, 1, 75, 101)
    assert [level.shape[-1] for level in levels] == [56, 28, 14, 7]
    keypoints, descriptors = output["keypoints"], output["descriptors"]
    assert keypoints.shape == (2, 50, 2) and descriptors.shape == (2, 50, SIZES[size].descriptor_dim)
    assert bool(
        (keypoints[..., 0] >= 0).all()
        and (keypoints[..., 0] <= 100).all()
        and (keypoints[..., 1] <= 74).all()
    )
    torch.testing.assert_close(descriptors.norm(dim=-1), torch.ones(2, 50))


def test_fused_and_reference_descriptors_agree():
    torch.manual_seed(0)
    model = CLIDDModel("T64").eval()
    for parameter in model.predictor.parameters():  # non-zero offsets, so deformable samples differ
        torch.nn.init.normal_(parameter, std=0.5)
    image = torch.rand(1, 1, 64, 80)
    keypoints = torch.rand(1, 40, 2) * torch.tensor([79.0, 63.0])
    with torch.no_grad():
        levels, _ = model.features(image)
        model.use_fused_sampler = False
        reference = model.describe(levels, keypoints)
        model.use_fused_sampler = True
        fused = model.describe(levels, keypoints)
    torch.testing.assert_close(fused, reference, rtol=1e-4, atol=1e-5)


def test_descriptor_depends_only_on_local_content():
    """Descriptors of a keypoint do not change when a far-away part of the image changes."""
    torch.manual_seed(0)
    model = CLIDDModel("A48").eval()
    image = torch.rand(1, 1, 128, 128)
    changed = image.clone()
    changed[..., 96:, 96:] = 0.0
    keypoint = torch.tensor([[[20.0, 24.0]]])
    with torch.no_grad():
        a = model.describe(model.features(image)[0], keypoint)
        b = model.describe(model.features(changed)[0], keypoint)
    torch.testing.assert_close(a, b)


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(WeightsError, match="no CLIDD .* weights"):
        CLIDDModel.from_pretrained("A48", tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptFileError, match="corrupt.pt"):
        CLIDDModel.from_pretrained("A48", corrupt)
    wrong = tmp_path / "wrong.pt"
    torch.save({"model": CLIDDModel("N64").state_dict()}, wrong)
    with pytest.raises(CorruptFileError, match="wrong.pt"):
        CLIDDModel.from_pretrained("A48", wrong)


def test_from_pretrained_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = CLIDDModel("A48").eval()
    path = tmp_path / "a48.pt"
    torch.save({"model": model.state_dict()}, path)
    loaded = CLIDDModel.from_pretrained("A48", path)
    image = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image, 20)["descriptors"], model(image, 20)["descriptors"])


def test_shipped_sizes_are_registered_and_extract(stereo_pair):
    import tiepoint
    from tiepoint.features.clidd import training_record, weights_path

    shipped = [name for name in SIZES if weights_path(name).is_file()]
    assert "A48" in shipped, "the A48 weights must ship with the package"
    for size in shipped:
        record = training_record(size)
        assert record["model"] == f"clidd-{size}" and record["steps"] > 0 and "command" in record
        assert record["benchmark"][f"oxford clidd-{size.lower()}+mnn"]["mha@3px"] > 0
        features = tiepoint.extract(stereo_pair.image0, f"clidd-{size.lower()}", max_keypoints=500)
        width, _ = features.image_size
        assert len(features.keypoints) == 500 and features.descriptors.shape == (
            500,
            SIZES[size].descriptor_dim,
        )
        assert (features.keypoints >= 0).all() and (features.keypoints[:, 0] <= width - 1).all()
        assert abs(float((features.descriptors**2).sum(1).mean()) - 1.0) < 1e-4
        assert (features.scores[:-1] >= features.scores[1:]).all()


@pytest.mark.parametrize("method", ["clidd-t64", "raco-clidd-t64"])
def test_no_keypoints_on_flat_patches(method, textured_image):
    import tiepoint

    blank = np.full((120, 160, 3), 200, np.uint8)
    assert len(tiepoint.extract(blank, method).keypoints) == 0
    assert len(tiepoint.extract(blank, method, min_contrast=0).keypoints) > 0  # what the network alone does
    half = blank.copy()
    half[:, 80:] = textured_image[:, 80:]
    keypoints = tiepoint.extract(half, method).keypoints
    assert (
        len(keypoints) > 0 and (keypoints[:, 0] >= 80 - 5).all()
    )  # the 9x9 window reaches 4 px into the flat half
    with pytest.raises(OptionError, match="min_contrast"):
        tiepoint.extract(blank, method, min_contrast=1)


def test_blank_pair_gives_no_matches_with_the_default_method():
    import tiepoint

    blank = np.zeros((240, 320), np.uint8)
    assert len(tiepoint.match(blank, blank)) == 0
