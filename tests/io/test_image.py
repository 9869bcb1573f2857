"""Images in every supported form, and every kind of bad image, give one canonical array or a clear error."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tiepoint.errors import ImageError
from tiepoint.io.image import MIN_SIDE, Resize, as_image, load_image, resize_to_max_edge


def test_load_png_gives_uint8_rgb(tmp_path, textured_image):
    rgb = textured_image.copy()
    rgb[..., 0] = 0  # make channels differ so that a BGR/RGB swap is caught
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    image = load_image(tmp_path / "a.png")
    assert image.dtype == np.uint8 and image.shape == (120, 160, 3)
    np.testing.assert_array_equal(image, rgb)


def test_sixteen_bit_greyscale_is_scaled(tmp_path):
    grey16 = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    image = load_image(tmp_path / "g16.png")
    assert image.shape == (64, 64, 3)
    np.testing.assert_array_equal(image[..., 0], np.round(grey16 / 257.0).astype(np.uint8))
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_rgba_drops_alpha(tmp_path, textured_image):
    rgba = np.concatenate([textured_image, np.full((120, 160, 1), 7, np.uint8)], axis=2)
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), textured_image)


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((32, 48), np.uint8),
        np.zeros((32, 48, 1), np.uint8),
        np.zeros((32, 48, 4), np.uint8),
        np.zeros((32, 48, 3), np.float32),
        np.zeros((32, 48), np.uint16),
    ],
)
def test_arrays_of_each_layout(array):
    image = as_image(array)
    assert image.shape == (32, 48, 3) and image.dtype == np.uint8


def test_tensors_follow_kornia_convention():
    tensor = torch.linspace(0, 1, 3 * 20 * 30).reshape(1, 3, 20, 30)
    image = as_image(tensor)
    assert image.shape == (20, 30, 3)
    assert image[0, 0, 0] == 0 and image[-1, -1, -1] == 255
    assert as_image(torch.zeros(20, 30, dtype=torch.uint8)).shape == (20, 30, 3)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((1, 1, 3), np.uint8), "at least"),
        (np.zeros((MIN_SIDE - 1, 100), np.uint8), "at least"),
        (np.zeros((32, 32, 3), np.int64), "dtype"),
        (np.zeros((32, 32, 2), np.uint8), "shape"),
        (np.full((32, 32), 255.0, np.float32), r"\[0, 1\]"),
        (np.full((32, 32), np.nan, np.float32), "NaN"),
        ([[0, 1], [2, 3]], "expected a path"),
        (torch.zeros(2, 3, 20, 20), "one image"),
    ],
)
def test_bad_arrays_give_clear_errors(bad, message):
    with pytest.raises(ImageError, match=message):
        as_image(bad)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(ImageError, match="not found: .*missing.png"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty .*empty.png"):
        load_image(tmp_path / "empty.png")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg" * 3)
    with pytest.raises(ImageError, match="corrupt.jpg"):
        load_image(tmp_path / "corrupt.jpg")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(ImageError, match="text.png"):
        load_image(tmp_path / "text.png")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_huge_image_rejected_from_header(tmp_path, monkeypatch):
    import tiepoint.io.image as image_module

    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((100, 100), np.uint8))
    monkeypatch.setattr(image_module, "MAX_PIXELS", 5000)
    with pytest.raises(ImageError, match="megapixels"):
        load_image(tmp_path / "big.png")


def test_resize_maps_coordinates_back():
    image = np.zeros((400, 1000, 3), np.uint8)
    small, resize = resize_to_max_edge(image, 500)
    assert small.shape == (200, 500, 3) and resize == Resize(2.0, 2.0)
    # the centre of the top-left pixel and of the bottom-right pixel map to the same in the original
    np.testing.assert_allclose(
        resize.to_original(np.array([[-0.5, -0.5], [499.5, 199.5]])), [[-0.5, -0.5], [999.5, 399.5]]
    )
    same, identity = resize_to_max_edge(image, 2000)
    assert same is image and identity == Resize()
    cov = resize.covariances_to_original(np.eye(2)[None])
    np.testing.assert_allclose(cov[0], 4 * np.eye(2))


def test_resize_for_network_gives_multiples_and_maps_back():
    from tiepoint.io.image import resize_for_network

    image = np.zeros((700, 1000, 3), np.uint8)
    resized, resize = resize_for_network(image, 640, 32)
    assert resized.shape[:2] == (448, 640)
    assert resize.to_original(np.array([[639.5, 447.5]])) == pytest.approx(np.array([[999.5, 699.5]]))
    odd = np.zeros((50, 70), np.uint8)
    resized, resize = resize_for_network(odd, None, 32)  # no shrinking, sides rounded to the nearest multiple
    assert resized.shape == (64, 64) and resize.scale_x == pytest.approx(70 / 64)
    same = np.zeros((64, 96), np.uint8)
    assert resize_for_network(same, 640, 32)[0] is same


def test_resize_for_network_upsamples_after_shrinking():
    from tiepoint.io.image import resize_for_network

    resized, resize = resize_for_network(np.zeros((700, 1000), np.uint8), 640, 32, upsample=2.0)
    assert resized.shape == (896, 1280)
    assert resize.to_original(np.array([[1279.5, 895.5]])) == pytest.approx(np.array([[999.5, 699.5]]))
    resized, resize = resize_for_network(np.zeros((480, 640), np.uint8), 640, 32, upsample=1.5)
    assert resized.shape == (704, 960) and resize.scale_x == pytest.approx(640 / 960)
    with pytest.raises(ValueError, match="upsample"):
        resize_for_network(np.zeros((480, 640), np.uint8), 640, 32, upsample=0.5)


# --- issue 26: orientation, bit depth, Pillow's guard, bad arguments


@pytest.fixture
def fresh_warnings(monkeypatch):
    """Forget the once-per-process warnings already given."""
    import tiepoint.io.image as image_module

    monkeypatch.setattr(image_module, "_warned", set())


def _write_with_orientation(path, array, orientation):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(path, exif=exif)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_on_request_as_pillow_does(tmp_path, textured_image, orientation):
    from PIL import Image, ImageOps

    path = tmp_path / "photo.png"
    _write_with_orientation(path, textured_image, orientation)
    stored = load_image(path)
    np.testing.assert_array_equal(stored, textured_image)  # the default reads pixels as stored, as COLMAP
    with Image.open(path) as image:
        viewed = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    np.testing.assert_array_equal(load_image(path, orientation="exif"), viewed)


def test_exif_orientation_of_a_jpeg(tmp_path, textured_image):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(textured_image).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    assert load_image(tmp_path / "photo.jpg").shape == (120, 160, 3)  # OpenCV does not turn it either
    assert load_image(tmp_path / "photo.jpg", orientation="exif").shape == (160, 120, 3)


def test_ignored_orientation_is_reported_once(tmp_path, textured_image, caplog, fresh_warnings):
    for name in ("a.png", "b.png"):
        _write_with_orientation(tmp_path / name, textured_image, 8)
    with caplog.at_level("WARNING", logger="tiepoint"):
        load_image(tmp_path / "a.png")
        load_image(tmp_path / "b.png")
        load_image(tmp_path / "b.png", orientation="exif")
    messages = [r.getMessage() for r in caplog.records if "orientation" in r.getMessage()]
    assert len(messages) == 1
    assert "a.png" in messages[0] and "orientation='exif'" in messages[0] and "COLMAP" in messages[0]


def test_no_orientation_no_warning(tmp_path, textured_image, caplog, fresh_warnings):
    _write_with_orientation(tmp_path / "a.png", textured_image, 1)
    cv2.imwrite(str(tmp_path / "b.png"), textured_image)
    with caplog.at_level("WARNING", logger="tiepoint"):
        load_image(tmp_path / "a.png")
        load_image(tmp_path / "b.png")
    assert not caplog.records


def test_unknown_orientation_option_is_refused(tmp_path, textured_image):
    from tiepoint.errors import OptionError

    cv2.imwrite(str(tmp_path / "a.png"), textured_image)
    with pytest.raises(OptionError, match="orientation must be one of stored, exif"):
        load_image(tmp_path / "a.png", orientation="viewer")


def test_load_image_of_an_array_says_what_to_use(textured_image):
    with pytest.raises(ImageError, match="expects the path of an image file, got ndarray; as_image"):
        load_image(textured_image)


def test_eight_bit_data_in_sixteen_bits_warns_once(caplog, fresh_warnings):
    eight_in_sixteen = np.tile(np.arange(256, dtype=np.uint16), (32, 1))
    with caplog.at_level("WARNING", logger="tiepoint"):
        image = as_image(eight_in_sixteen, name="frame")
        as_image(eight_in_sixteen, name="frame")
    assert image.max() == 1  # scaled from the full 16-bit range, as documented
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "frame" in messages[0] and "astype(np.uint8)" in messages[0]


def test_full_range_sixteen_bits_does_not_warn(caplog, fresh_warnings):
    with caplog.at_level("WARNING", logger="tiepoint"):
        as_image(np.arange(32 * 48, dtype=np.uint16).reshape(32, 48) * 40)
        as_image(np.zeros((32, 48), np.uint16))  # blank: nothing to warn about
    assert not caplog.records


def test_pillow_guard_is_left_alone(tmp_path, textured_image):
    from PIL import Image

    import tiepoint.io.image  # noqa: F401 - importing tiepoint must not lift Pillow's guard

    before = Image.MAX_IMAGE_PIXELS
    assert before is not None
    cv2.imwrite(str(tmp_path / "a.png"), textured_image)
    load_image(tmp_path / "a.png")
    assert Image.MAX_IMAGE_PIXELS == before


def test_image_beyond_pillows_guard_but_within_ours_loads(tmp_path, textured_image, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 160x120 is beyond 2x this: Pillow would refuse
    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(textured_image, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(load_image(tmp_path / "a.png"), textured_image)
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_huge_image_beyond_both_guards_is_refused(tmp_path, monkeypatch):
    from PIL import Image

    import tiepoint.io.image as image_module

    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((100, 100), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    monkeypatch.setattr(image_module, "MAX_PIXELS", 2000)
    with pytest.raises(ImageError, match="big.png .*megapixels"):
        load_image(tmp_path / "big.png")
    assert Image.MAX_IMAGE_PIXELS == 1000


def test_large_image_is_logged_with_its_size(tmp_path, textured_image, monkeypatch, caplog):
    import tiepoint.io.image as image_module

    cv2.imwrite(str(tmp_path / "a.png"), textured_image)
    monkeypatch.setattr(image_module, "LARGE_PIXELS", 1000)
    with caplog.at_level("INFO", logger="tiepoint"):
        load_image(tmp_path / "a.png")
    assert any("160x120" in r.getMessage() for r in caplog.records)


def test_read_image_info(tmp_path, textured_image):
    from tiepoint.io.image import read_image_info

    _write_with_orientation(tmp_path / "a.png", textured_image, 6)
    info = read_image_info(tmp_path / "a.png")
    assert (info.width, info.height, info.orientation, info.pixels) == (160, 120, 6, 19200)
    assert read_image_info(tmp_path / "missing.png") is None
