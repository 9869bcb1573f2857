"""The appearance-change model: presets, determinism, each effect's physics and option checks."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest

from tiepoint.errors import OptionError
from tiepoint_lab.data.appearance import EFFECTS, Appearance

H, W = 96, 128


def _texture(seed: int = 0) -> np.ndarray:
    """A ``(H, W, 3)`` float32 colour image in ``[0.1, 0.9]`` with blob texture."""
    rng = np.random.default_rng(seed)
    small = rng.random((12, 16, 3)).astype(np.float32)
    return 0.1 + 0.8 * cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _luma(image: np.ndarray) -> np.ndarray:
    return image @ np.array([0.299, 0.587, 0.114], np.float32)


def _residual_std(image: np.ndarray) -> float:
    """Standard deviation of the luma minus its local mean: the noise of a flat region."""
    luma = _luma(image)
    return float((luma - cv2.blur(luma, (5, 5)))[3:-3, 3:-3].std())


def _normals_and_valid() -> tuple[np.ndarray, np.ndarray]:
    """A scene: the top third sky, below it a wall facing the camera (left) and a floor facing up (right)."""
    normals = np.zeros((H, W, 3), np.float32)
    normals[:, : W // 2] = (0, 0, -1)
    normals[:, W // 2 :] = (0, -0.9, -0.436)
    normals /= np.linalg.norm(normals, axis=2, keepdims=True)
    valid = np.ones((H, W), bool)
    valid[: H // 3] = False
    return normals, valid


PRESETS = {
    "default": Appearance(),
    "mild": Appearance.mild(),
    "strong": Appearance.strong(),
    "benchmark": Appearance.benchmark(),
}


@pytest.mark.parametrize("preset", PRESETS)
def test_shape_dtype_range_and_input_untouched(preset):
    appearance = PRESETS[preset]
    image = _texture()
    before = image.copy()
    normals, valid = _normals_and_valid()
    rng = np.random.default_rng(0)
    for index in range(12):
        scene = {"normals": normals, "valid": valid} if index % 2 else {}
        out = appearance(image, rng, view=index % 2, **scene)
        assert out.shape == image.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 1 and np.isfinite(out).all()
        assert out is not image
    np.testing.assert_array_equal(image, before)


@pytest.mark.parametrize("name", EFFECTS)
def test_each_effect_alone_changes_the_image(name):
    image = _texture()
    out = Appearance().only(name, strength=1.0)(image, np.random.default_rng(1))
    assert np.abs(out - image).mean() > 0.005
    assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1


def test_deterministic_and_reproducible_from_params():
    image, appearance = _texture(), Appearance.strong()
    a = appearance(image, np.random.default_rng(5))
    b = appearance(image, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    params = appearance.draw(np.random.default_rng(5))
    np.testing.assert_array_equal(appearance.apply(image, params), a)
    # the parameters alone reproduce the image, also after a JSON round trip
    np.testing.assert_array_equal(Appearance.none().apply(image, json.loads(json.dumps(params))), a)


def test_none_is_the_identity():
    image = _texture()
    normals, valid = _normals_and_valid()
    for seed in range(3):
        out = Appearance.none()(image, np.random.default_rng(seed), normals=normals, valid=valid)
        np.testing.assert_array_equal(out, image)


def test_presets():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mild, bench = Appearance.mild().draw(rng), Appearance.benchmark().draw(rng)
        assert {name for name in EFFECTS if mild[name]} == {"shading", "exposure"}
        assert bench["shading"] and bench["exposure"] and not bench["sensor"]
    assert all(getattr(Appearance.strong(), f"{name}_strength") == 1 for name in EFFECTS)


def test_params_are_json_serialisable():
    rng = np.random.default_rng(0)
    for appearance in (Appearance(), Appearance.strong(), Appearance.none()):
        for _ in range(10):
            params = appearance.draw(rng)
            assert json.loads(json.dumps(params)) == params
            assert set(EFFECTS) <= set(params) and isinstance(params["seed"], int)


def test_draws_take_a_fixed_number_of_values_and_effects_do_not_interact():
    for seed in range(20):
        states = []
        for appearance in (Appearance(), Appearance.none(), Appearance.strong().only("night", "sensor")):
            rng = np.random.default_rng(seed)
            appearance.draw(rng)
            states.append(rng.random())
        assert states[0] == states[1] == states[2]
        full = Appearance.strong().only(*EFFECTS)
        for name in EFFECTS:
            without = dataclasses.replace(full, **{name: 0.0})
            a, b = full.draw(np.random.default_rng(seed)), without.draw(np.random.default_rng(seed))
            assert b[name] is None and a[name] is not None
            assert {k: v for k, v in a.items() if k != name} == {k: v for k, v in b.items() if k != name}


def test_reference_draws_view_0():
    appearance = Appearance.strong().only(*EFFECTS)
    paired = dataclasses.replace(appearance, reference=Appearance.mild())
    rng = np.random.default_rng(0)
    view0, view1 = paired.draw(rng, view=0), paired.draw(rng, view=1)
    assert {name for name in EFFECTS if view0[name]} == {"shading", "exposure"} and view0["view"] == 0
    assert all(view1[name] for name in EFFECTS) and view1["view"] == 1
    # without a reference both views come from the appearance itself
    assert all(appearance.draw(np.random.default_rng(0), view=0)[name] for name in EFFECTS)


def test_night_is_dark_and_noisy_with_more_relative_noise_in_the_dark():
    image = np.full((H, W, 3), 0.9, np.float32)
    image[:, : W // 2] = 0.35
    night = Appearance().only("night", strength=1.0)
    for seed in range(3):
        params = night.draw(np.random.default_rng(seed))
        params["night"].update(lamps=[], pools=[])  # flat regions, to measure the noise
        out = night.apply(image, params)
        assert _luma(out).mean() < 0.4 * _luma(image).mean()
        dark, bright = out[:, : W // 2 - 4], out[:, W // 2 + 4 :]
        assert _residual_std(image[:, : W // 2 - 4]) == 0
        assert _residual_std(dark) > 0.01 and _residual_std(bright) > 0.005
        relative = [_residual_std(part) / _luma(part).mean() for part in (dark, bright)]
        assert relative[0] > 1.5 * relative[1]
        assert _residual_std(bright**2) > 1.8 * _residual_std(dark**2)  # shot noise: more in linear light
        assert out[..., 2].mean() > out[..., 0].mean()  # blue tint of a grey scene


def test_night_lamps_only_on_valid_pixels_and_sky_is_near_black():
    image = np.full((H, W, 3), 0.6, np.float32)
    valid = np.zeros((H, W), bool)
    valid[:, : int(0.4 * W)] = True
    night = Appearance().only("night", strength=1.0)
    lit = 0
    for seed in range(6):
        out = night(image, np.random.default_rng(seed), valid=valid)
        sky = out[:, int(0.75 * W) :]
        assert sky.mean() < 0.08 and sky.max() < 0.4
        lit += int((out[valid].min(axis=1) > 0.75).sum())
    assert lit > 20  # lamps were drawn, on the surface


def test_shading_with_normals_brightens_surfaces_facing_the_light():
    shading = Appearance().only("shading", strength=1.0)
    image = np.full((H, W, 3), 0.5, np.float32)
    for seed in range(5):
        params = shading.draw(np.random.default_rng(seed))
        light = np.array(params["shading"]["light"], np.float32)
        away = np.array([-light[0], -light[1], -0.05], np.float32)
        away /= np.linalg.norm(away)
        assert away @ light < 0 and away[2] < 0 and light[2] < 0
        normals = np.empty((H, W, 3), np.float32)
        normals[:, : W // 2], normals[:, W // 2 :] = light, away
        out = shading.apply(image, params, normals=normals)
        assert out[:, : W // 2].mean() > out[:, W // 2 :].mean() + 0.1


def test_shading_without_normals_is_a_smooth_field():
    image = np.full((H, W, 3), 0.5, np.float32)
    out = Appearance().only("shading", strength=1.0)(image, np.random.default_rng(2))
    luma = _luma(out)
    assert luma.std() > 0.02  # relit: not uniform any more
    assert np.abs(np.diff(luma, axis=1)).max() < 0.02  # but smooth


def test_snow_whitens_upward_surfaces_in_winter():
    season = Appearance().only("season", strength=1.0)
    normals, valid = _normals_and_valid()
    image = np.full((H, W, 3), (0.2, 0.4, 0.15), np.float32)  # vegetation-like green
    winters = 0
    for seed in range(10):
        params = season.draw(np.random.default_rng(seed))
        out = season.apply(image, params, normals=normals, valid=valid)
        wall, floor = out[H // 2 :, : W // 2], out[H // 2 :, W // 2 :]
        if params["season"]["kind"] == "winter":
            winters += 1
            assert floor.mean() > wall.mean() + 0.2 and np.ptp(floor.mean(axis=(0, 1))) < 0.1
            sky = out[: H // 3]
            np.testing.assert_array_equal(sky[:, W // 2 :], sky[:, : W // 2])  # no snow in the sky
        else:  # autumn: green turns towards yellow, orange or brown
            assert (wall[..., 0] / wall[..., 1]).mean() > 1.5 * 0.2 / 0.4
    assert 0 < winters < 10


def test_inverted_sensor_anticorrelates_and_thermal_is_grey():
    image = _texture()
    inverted = Appearance(sensor_modes=("inverted",)).only("sensor", strength=1.0)
    out = inverted(image, np.random.default_rng(0))
    assert np.corrcoef(_luma(out).ravel(), _luma(image).ravel())[0, 1] < -0.9
    thermal = Appearance(sensor_modes=("thermal",)).only("sensor", strength=1.0)
    _, valid = _normals_and_valid()
    params = thermal.draw(np.random.default_rng(0))
    out = thermal.apply(image, params, valid=valid)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    assert np.abs(out - image).mean() > 0.05


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"night": -0.1}, "Appearance.night "),
        ({"blur_strength": 1.5}, "Appearance.blur_strength"),
        ({"shading": float("nan")}, "Appearance.shading "),
        ({"jpeg": True}, "Appearance.jpeg "),
        ({"sensor_modes": ("thermal", "radar")}, "Appearance.sensor_modes"),
        ({"reference": "mild"}, "Appearance.reference"),
    ],
)
def test_bad_options_name_the_field(options, field):
    with pytest.raises(OptionError, match=field):
        Appearance(**options)


def test_only_checks_names_and_strength():
    with pytest.raises(OptionError, match="fog"):
        Appearance().only("fog")
    with pytest.raises(OptionError, match="night_strength"):
        Appearance().only("night", strength=2.0)
    with pytest.raises(OptionError, match="view"):
        Appearance().draw(np.random.default_rng(0), view=2)
    blur = Appearance().only("blur")
    assert blur.blur == 1 and blur.blur_strength == Appearance().blur_strength
    assert all(getattr(blur, name) == 0 for name in EFFECTS if name != "blur")
