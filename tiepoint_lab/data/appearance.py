"""A model of appearance changes between two views: lighting, night, seasons, optics and other sensors.

:class:`~tiepoint_lab.data.homography.Photometric` jitters an image a little; held-out data also has day and
night, seasons and different sensors (thermal against visible). :class:`Appearance` models those changes for
one view of a pair. It has eight effects, each with a probability (0 = off) and a strength in ``[0, 1]``
(0 leaves the image as it is, 1 is the largest change):

``shading``
    Relighting. With surface normals: Lambertian shading from a random directional light (from above and in
    front) plus ambient light, a part of which comes from the sky (upward-facing surfaces get more of it).
    Without normals (real photos): a smooth random illumination field, a few bicubically upsampled random
    values plus a gradient towards the light, so one side of the photo gets brighter than the other.
``exposure``
    A global gain of -3 to +1 stops at strength 1 (dusk-dark to over-exposed) and a gamma in ``[1/1.6, 1.6]``.
``night``
    Strong darkening with a blue tint, the sky (``valid`` False) nearly black, a few broad pools of light on
    surfaces, lit windows and lamps (warm rectangles and ellipses) on surfaces with a glow around them,
    sometimes lens bloom, then sensor noise with shot noise (variance proportional to the signal) and read
    noise, which after the square-root encoding is strongest in dark regions.
``temperature``
    White balance: warm (red up, blue down) or cool, with a small green-magenta tint; luminance is kept.
``season``
    Autumn: greenish (vegetation-like) colours turn yellow, orange or brown. Winter: greens turn grey-brown,
    the whole image loses saturation and, with normals, upward-facing surfaces get snow-like white.
``blur``
    A Gaussian blur (sigma 0.4 to 3 px) or a linear motion blur (up to 15 px), in pixels of the image given.
``jpeg``
    JPEG re-compression, quality 95 down to 15 at strength 1.
``sensor``
    Another sensor: grey (random spectral weights), inverted grey, or thermal-like (the smoothed luminance of
    the albedo through a random monotone or non-monotone curve, with edge emphasis, a cold sky and column
    noise). The strength blends the converted image with the visible one (1: fully converted).

Pipeline. The image is taken as ``x**2``, an approximately linear intensity ("gamma 2"), for the effects that
are physically multiplicative (shading, white balance, night, exposure gain, blur, noise) and re-encoded with
a square root; season changes act on the encoded colours before, gamma, the sensor conversion and JPEG after.

Randomness. :meth:`Appearance.draw` takes a fixed number of random values from the generator, whatever
fires, so toggling one effect leaves the parameters of the others unchanged. Its result is a JSON-serialisable
dict that holds everything :meth:`Appearance.apply` needs, positions in fractions of the image width and
height, and a ``seed`` for the per-pixel noise: the parameters alone reproduce the image.

Views. ``draw(rng, view=0)`` uses :attr:`Appearance.reference` when it is set (e.g. ``Appearance.mild()``, so
that a benchmark's reference images stay close to daylight) and the appearance itself otherwise; presets leave
it unset, so both views of a training pair come from the same distribution unless the caller asks.

Example:
    >>> rng = np.random.default_rng(0)
    >>> image = np.full((240, 320, 3), 0.5, np.float32)
    >>> changed = Appearance()(image, rng, view=1)
    >>> params = Appearance.strong().draw(rng)  # JSON-serialisable; apply(image, params) re-renders
    >>> night = Appearance().only("night", strength=1.0)(image, rng)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from tiepoint.errors import ImageError, OptionError

EFFECTS = ("shading", "exposure", "night", "temperature", "season", "blur", "jpeg", "sensor")
"""The effects, in the order :meth:`Appearance.draw` draws them."""

SENSOR_MODES = ("grey", "inverted", "thermal")

_BLOCK = 24
"""Uniform numbers reserved for each effect's parameters (the night's lamps and pools have their own)."""
_LAMPS = 16
"""Lamp slots of the night effect; the strength decides how many are lit."""
_LAMP_VALUES = 10
_POOLS = 3
_POOL_VALUES = 4
_SIZE = 1 + len(EFFECTS) * (1 + _BLOCK) + _LAMPS * _LAMP_VALUES + _POOLS * _POOL_VALUES
"""Uniform numbers :meth:`Appearance.draw` takes from the generator (plus one integer, the noise seed)."""

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class _Stream:
    """Hands out a fixed block of uniform numbers in ``[0, 1)`` one at a time."""

    def __init__(self, values: np.ndarray) -> None:
        self.values, self.index = values, 0

    def __call__(self, low: float = 0.0, high: float = 1.0) -> float:
        """The next number, mapped to ``[low, high)``."""
        if self.index >= len(self.values):
            raise RuntimeError("appearance: a parameter block is too small")  # a bug here, not bad input
        value = float(self.values[self.index])
        self.index += 1
        return low + (high - low) * value

    def seek(self, index: int) -> None:
        """Continue at ``index``, so that later parameters keep their numbers whatever came before."""
        if index < self.index:
            raise RuntimeError("appearance: parameter blocks overlap")  # a bug here, not bad input
        self.index = index

    def log(self, low: float, high: float) -> float:
        """The next number, log-uniform in ``[low, high)``."""
        return math.exp(self(math.log(low), math.log(high)))


@dataclass
class Appearance:
    """Random appearance changes of one view; each effect is applied with its probability.

    Every effect has a probability (field named after it) and a strength in ``[0, 1]`` (``<name>_strength``);
    the module docstring says what each effect does and what strength 1 means.

    Attributes:
        shading, shading_strength: relighting (directional light with normals, else a smooth field).
        exposure, exposure_strength: global gain (-3 to +1 stops at strength 1) and gamma.
        night: night photo (dark, blue, noisy, lamps on surfaces), night_strength.
        temperature, temperature_strength: warm or cool white balance.
        season, season_strength: autumn or winter colours, snow on upward surfaces with normals.
        blur, blur_strength: Gaussian or motion blur.
        jpeg, jpeg_strength: JPEG re-compression.
        sensor, sensor_strength: grey, inverted grey or thermal-like conversion (strength: blend weight).
        sensor_modes: the conversions ``sensor`` picks from, uniformly.
        reference: the appearance of view 0 (:meth:`draw` with ``view=0``); None: this one for both views.
    """

    shading: float = 0.5
    shading_strength: float = 0.6
    exposure: float = 0.5
    exposure_strength: float = 0.5
    night: float = 0.1
    night_strength: float = 0.8
    temperature: float = 0.3
    temperature_strength: float = 0.5
    season: float = 0.15
    season_strength: float = 0.7
    blur: float = 0.1
    blur_strength: float = 0.4
    jpeg: float = 0.15
    jpeg_strength: float = 0.5
    sensor: float = 0.05
    sensor_strength: float = 1.0
    sensor_modes: tuple[str, ...] = SENSOR_MODES
    reference: Appearance | None = None

    def __post_init__(self) -> None:
        for name in EFFECTS:
            for field in (name, f"{name}_strength"):
                value = getattr(self, field)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    kind = "strength" if field.endswith("_strength") else "probability"
                    raise OptionError(
                        f"Appearance.{field} ({kind}) must be a number in [0, 1], got {value!r}"
                    )
        self.sensor_modes = tuple(self.sensor_modes)
        unknown = [mode for mode in self.sensor_modes if mode not in SENSOR_MODES]
        if unknown or not self.sensor_modes:
            raise OptionError(
                f"Appearance.sensor_modes must be a non-empty subset of {SENSOR_MODES}, "
                f"got {self.sensor_modes}"
            )
        if self.reference is not None and not isinstance(self.reference, Appearance):
            raise OptionError(f"Appearance.reference must be an Appearance or None, got {self.reference!r}")

    # presets ---------------------------------------------------------------------------------------------

    @classmethod
    def none(cls) -> Appearance:
        """No change: :meth:`apply` returns a copy of the image."""
        return cls(**{name: 0.0 for name in EFFECTS})

    @classmethod
    def mild(cls) -> Appearance:
        """Daylight shading and a small exposure change only, e.g. for view 0 (reference images)."""
        off = {name: 0.0 for name in EFFECTS if name not in ("shading", "exposure")}
        return cls(**off, shading=1.0, shading_strength=0.3, exposure=1.0, exposure_strength=0.15)

    @classmethod
    def strong(cls) -> Appearance:
        """Every effect possible, at full strength; a third of draws are night, a quarter other sensors."""
        return cls(
            shading=0.8,
            exposure=0.7,
            night=0.35,
            temperature=0.6,
            season=0.4,
            blur=0.3,
            jpeg=0.3,
            sensor=0.25,
            **{f"{name}_strength": 1.0 for name in EFFECTS},
        )

    @classmethod
    def benchmark(cls) -> Appearance:
        """:meth:`strong` with shading and exposure always on and no cross-sensor conversion.

        Every draw relights the image; night, colour, season, blur and JPEG come at full strength with the
        probabilities of :meth:`strong` (other sensors are a benchmark of their own).
        """
        return dataclasses.replace(cls.strong(), shading=1.0, exposure=1.0, sensor=0.0)

    def only(self, *names: str, strength: float | None = None) -> Appearance:
        """A copy with just these effects on (probability 1), at ``strength`` or at their own strengths.

        The copy has no :attr:`reference`, so both views get these effects (for figures and ablations).
        """
        unknown = [name for name in names if name not in EFFECTS]
        if unknown:
            raise OptionError(f"Appearance.only: unknown effects {unknown}; the effects are {EFFECTS}")
        changes: dict[str, Any] = {name: float(name in names) for name in EFFECTS}
        if strength is not None:
            changes.update({f"{name}_strength": strength for name in names})
        return dataclasses.replace(self, reference=None, **changes)

    # drawing and applying --------------------------------------------------------------------------------

    def draw(self, rng: np.random.Generator, view: int = 1) -> dict[str, Any]:
        """The parameters of one change (JSON-serialisable), from a fixed number of draws from ``rng``.

        Args:
            rng: the random generator.
            view: 0 for the first image of a pair (drawn from :attr:`reference` when set), 1 for the second.

        Returns:
            ``{"view": view, "seed": int, "<effect>": dict or None, ...}``, None where an effect did not fire.
        """
        if view not in (0, 1):
            raise OptionError(f"view must be 0 or 1, got {view!r}")
        if view == 0 and self.reference is not None:
            return self.reference.draw(rng, view=0)
        uniforms = rng.random(_SIZE)
        seed = int(rng.integers(0, 2**31))
        fire, blocks = uniforms[: len(EFFECTS)], uniforms[len(EFFECTS) :]
        params: dict[str, Any] = {"view": view, "seed": seed}
        for index, name in enumerate(EFFECTS):
            block = blocks[index * _BLOCK : (index + 1) * _BLOCK]
            if name == "night":
                block = np.concatenate([block, blocks[len(EFFECTS) * _BLOCK :]])
            on = fire[index] < getattr(self, name)
            params[name] = (
                _DRAW[name](self, _Stream(block), getattr(self, f"{name}_strength")) if on else None
            )
        return params

    def apply(
        self,
        image: np.ndarray,
        params: dict[str, Any],
        rng: np.random.Generator | None = None,
        normals: np.ndarray | None = None,
        valid: np.ndarray | None = None,
    ) -> np.ndarray:
        """Change an image as ``params`` (from :meth:`draw`) say.

        Args:
            image: ``(H, W, 3)`` float in ``[0, 1]`` (uint8 is scaled by 1/255); not modified.
            params: the parameters from :meth:`draw` (or read back from JSON).
            rng: the generator of the per-pixel noise; None seeds one with ``params["seed"]``, so that the
                parameters alone reproduce the result.
            normals: ``(H, W, 3)`` unit surface normals in the camera frame (x right, y down, z forward;
                ``n_z < 0`` on visible surfaces), or None.
            valid: ``(H, W)`` bool, True on surfaces, False on sky or background; None: all surfaces.

        Returns:
            ``(H, W, 3)`` float32 in ``[0, 1]``, a new array.
        """
        x = _as_float_image(image)
        normals, valid = _check_maps(x.shape[:2], normals, valid)
        noise = rng if rng is not None else np.random.default_rng(params.get("seed", 0))
        p = {name: params.get(name) for name in EFFECTS}
        if p["season"]:
            x = _season(x, p["season"], normals, valid)
        albedo = x
        linear = any(p[name] for name in ("shading", "exposure", "night", "temperature", "blur"))
        if linear:
            x = x * x
        if p["shading"]:
            x = _shade(x, p["shading"], normals, valid)
        if p["temperature"]:
            x = cv2.multiply(x, (*p["temperature"]["gains"], 0.0))
        if p["night"]:
            x = _night_light(x, p["night"], valid)
        if p["exposure"]:  # at night, the night's gain sets the darkness: exposure only brightens a little
            gain = p["exposure"]["gain"]
            x *= np.float32(max(gain, 0.7) if p["night"] else gain)
        if p["blur"]:
            x = _blur(x, p["blur"])
        if p["night"]:
            x = _night_sensor(x, p["night"], noise)
        if linear:
            x = cv2.sqrt(np.clip(x, 0.0, 1.0, out=x))
        if p["exposure"] and p["exposure"]["gamma"] != 1:
            x = cv2.pow(np.clip(x, 0.0, 1.0, out=x), p["exposure"]["gamma"])
        if p["sensor"]:
            x = _sensor(x, albedo, p["sensor"], valid, noise)
        x = np.clip(x, 0.0, 1.0, out=x)
        if p["jpeg"]:
            x = _jpeg(x, p["jpeg"]["quality"])
        return x

    def __call__(
        self,
        image: np.ndarray,
        rng: np.random.Generator,
        normals: np.ndarray | None = None,
        valid: np.ndarray | None = None,
        view: int = 1,
    ) -> np.ndarray:
        """:meth:`draw`, then :meth:`apply` with noise from the drawn seed: ``(H, W, 3)`` float32."""
        return self.apply(image, self.draw(rng, view), None, normals, valid)


# inputs -----------------------------------------------------------------------------------------------------


def _as_float_image(image: np.ndarray) -> np.ndarray:
    """A float32 copy of an ``(H, W, 3)`` image, uint8 scaled to ``[0, 1]``."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise ImageError(f"appearance: image must be (H, W, 3), got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) * np.float32(1 / 255)
    if not np.issubdtype(image.dtype, np.floating):
        raise ImageError(f"appearance: image must be float in [0, 1] or uint8, got {image.dtype}")
    return image.astype(np.float32, copy=True)


def _check_maps(shape: tuple[int, int], normals, valid) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``normals`` as ``(H, W, 3)`` float32 and ``valid`` as ``(H, W)`` bool (None stays None)."""
    if normals is not None:
        normals = np.asarray(normals, np.float32)
        if normals.shape != (*shape, 3):
            raise OptionError(f"normals must have shape {(*shape, 3)}, got {normals.shape}")
        if not np.isfinite(normals).all():  # e.g. NaN on the background of a rendering
            normals = np.nan_to_num(normals, nan=0.0, posinf=0.0, neginf=0.0)
    if valid is not None:
        valid = np.asarray(valid, bool)
        if valid.shape != shape:
            raise OptionError(f"valid must have shape {shape}, got {valid.shape}")
        if valid.all():
            valid = None
    return normals, valid


@lru_cache(maxsize=8)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W)`` float32 coordinates ``x`` and ``y``, -1 to 1 across the width and height (read-only)."""
    xs = np.broadcast_to(np.linspace(-1, 1, width, dtype=np.float32)[None], (height, width))
    ys = np.broadcast_to(np.linspace(-1, 1, height, dtype=np.float32)[:, None], (height, width))
    return xs, ys


def _rgb(channel: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 repeated into ``(H, W, 3)`` (much faster to multiply with than a broadcast)."""
    return cv2.cvtColor(channel, cv2.COLOR_GRAY2RGB)


def _luminance(x: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 luma of ``(H, W, 3)`` RGB."""
    return cv2.transform(x, _LUMA[None])


def _soft(image: np.ndarray, sigma: float) -> np.ndarray:
    """A wide Gaussian blur (``sigma`` pixels), computed at a reduced resolution for speed."""
    h, w = image.shape[:2]
    factor = max(1, min(int(sigma / 2), h // 4, w // 4))
    if factor > 1:
        small = cv2.resize(image, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma / factor, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(image, (0, 0), max(sigma, 0.3), borderType=cv2.BORDER_REFLECT)


# drawing ----------------------------------------------------------------------------------------------------


def _draw_shading(app: Appearance, u: _Stream, s: float) -> dict[str, Any]:
    azimuth = u(math.pi, 2 * math.pi)  # light from above (-y is up in the camera frame)
    tilt = u(math.radians(15), math.radians(70))  # angle from the camera's viewing direction
    light = [math.sin(tilt) * math.cos(azimuth), math.sin(tilt) * math.sin(azimuth), -math.cos(tilt)]
    return {
        "light": light,  # unit vector towards the light, camera frame
        "ambient": u(0.1, 0.45),
        "intensity": math.exp(s * u(-0.3, 0.3)),
        "field": [[u(-1, 1) for _ in range(4)] for _ in range(3)],
        "amplitude": s * u(0.6, 1.4),
        "mix": s,
    }


def _draw_exposure(app: Appearance, u: _Stream, s: float) -> dict[str, Any]:
    return {"gain": 2 ** (s * u(-3, 1)), "gamma": math.exp(s * u(-1, 1) * math.log(1.6))}


def _draw_temperature(app: Appearance, u: _Stream, s: float) -> dict[str, Any]:
    warmth, tint = s * u(-1, 1), s * u(-1, 1)
    gains = np.exp([0.6 * warmth, 0.1 * tint, -0.6 * warmth])
    gains /= gains @ _LUMA
    return {"warmth": warmth, "tint": tint, "gains": [float(g) for g in gains]}


def _draw_season(app: Appearance, u: _Stream, s: float) -> dict[str, Any]:
    kind = "autumn" if u() < 0.55 else "winter"
    return {
        "kind": kind,
        "hue": u(),  # autumn: 0 yellow, 1 red-brown
        "amount": s * u(0.6, 1.0),  # how far vegetation-like colours move
        "desaturation": s * u(0.3, 0.8) if kind == "winter" else s * u(0, 0.15),
        "snow": s * u(0.5, 1.0) if kind == "winter" else 0.0 * u(),
    }


def _draw_blur(app: Appearance, u: _Stream, s: float) -> dict[str, Any]:
    motion = u() >= 0.6
    return {
        "kind": "motion" if motion else "gaussian",
        "sigma": 0.4 + s * u(0, 2.6),
        "length": 1 + s * u(0, 14),
        "angle": u(0, 180),
    }


def _draw_jpeg(app: Appearance, u: _Stream, s: float) -> dict[str, Any]:
    return {"quality": round(95 - s * u(0, 80))}


def _draw_sensor(app: Appearance, u: _Stream, s: float) -> dict[str, Any]:
    modes = app.sensor_modes
    mode = modes[min(int(u() * len(modes)), len(modes) - 1)]
    weights = np.array([u(0.15, 0.5), u(0.3, 0.8), u(0.02, 0.35)])
    monotone, decreasing = u() < 0.5, u() < 0.4
    values = np.array([u() for _ in range(6)])
    if monotone:  # increasing (or decreasing) with random slopes
        curve = np.concatenate([[0.0], np.cumsum(0.2 + values[1:])])
        curve = curve / curve[-1]
        curve = curve[::-1] if decreasing else curve
    else:  # a smooth curve through random values: some materials swap brightness order
        curve = values
    low, high = u(0, 0.2), u(0.8, 1.0)
    return {
        "mode": mode,
        "blend": s,
        "weights": [float(w) for w in weights / weights.sum()],
        "curve": [float(c) for c in low + (high - low) * curve],  # 6 values at luminance 0, 0.2, ... 1
        "monotone": bool(monotone),
        "smooth": u(0.8, 2.5),
        "edges": u(0.3, 1.2),
        "sky": u(0.0, 0.25),
        "stripes": u(0.0, 0.015),
    }


def _draw_night(app: Appearance, u: _Stream, s: float) -> dict[str, Any]:
    params = {
        "gain": u.log(0.03, 0.12) ** s,  # of linear intensity: the encoded image is 0.17 to 0.35 as bright
        "tint": [u(0.4, 0.65) ** s, u(0.7, 0.9) ** s, 1.0],
        "saturation": 1 - s * u(0.3, 0.6),  # colours fade in low light
        "sky": u.log(0.02, 0.1) ** s,  # extra darkening of the sky
        "glow": s * u(0.3, 1.0),
        "glow_sigma": u(0.01, 0.03),  # fraction of the width
        "bloom": s * u(0.1, 0.4) * (u() < 0.5),
        "bloom_sigma": u(0.01, 0.04),
        "shot": s * u(0.002, 0.012),  # noise variance per unit of linear signal
        "read": s * u(0.001, 0.005),  # noise standard deviation at zero signal
    }
    lamps = round(s * u(2, 12))
    pools = int(u(0.5, _POOLS + 1) * min(1.0, 2 * s))
    params["lamps"] = []
    for index in range(_LAMPS):
        u.seek(_BLOCK + index * _LAMP_VALUES)
        lamp = {
            "shape": "window" if u() < 0.6 else "lamp",
            "centre": [u(), u()],  # fractions of the width and height
            "size": [u(0.006, 0.03), u(0.006, 0.03)],  # half sizes, fractions of the width
            "angle": u(-20, 20),
            "colour": [1.0, u(0.5, 0.85), u(0.15, 0.5)],
            "brightness": u(0.8, 3.0) * max(s, 0.3),
        }
        lamp["colour"][2] = min(lamp["colour"][2], lamp["colour"][1])
        if index < lamps:
            params["lamps"].append(lamp)
    params["pools"] = []
    for index in range(_POOLS):
        u.seek(_BLOCK + _LAMPS * _LAMP_VALUES + index * _POOL_VALUES)
        pool = {"centre": [u(), u()], "radius": u(0.1, 0.3), "gain": u(1.0, 5.0)}
        if index < pools:
            params["pools"].append(pool)
    return params


_DRAW = {
    "shading": _draw_shading,
    "exposure": _draw_exposure,
    "night": _draw_night,
    "temperature": _draw_temperature,
    "season": _draw_season,
    "blur": _draw_blur,
    "jpeg": _draw_jpeg,
    "sensor": _draw_sensor,
}


# applying ---------------------------------------------------------------------------------------------------


def _shade(x: np.ndarray, p: dict[str, Any], normals, valid) -> np.ndarray:
    """Linear ``(H, W, 3)`` ``x`` times the illumination of ``p``, relative to daylight from the front."""
    h, w = x.shape[:2]
    light = np.asarray(p["light"], np.float32)
    if normals is not None:
        ambient = p["ambient"]
        diffuse = np.maximum(cv2.transform(normals, light[None]), 0)
        sky = 0.5 - 0.5 * normals[:, :, 1]  # 1 facing up, 0 facing down
        relative = (ambient * sky + (1 - ambient) * diffuse) / (0.5 * ambient + (1 - ambient) * -light[2])
        factor = 1 + p["mix"] * (relative * np.float32(p["intensity"]) - 1)
    else:
        coarse = np.asarray(p["field"], np.float32)
        field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        xs, ys = _grid(h, w)
        direction = light[:2] / max(float(np.hypot(*light[:2])), 1e-6)
        ramp = direction[0] * xs + direction[1] * ys
        factor = np.exp(np.float32(p["amplitude"]) * (0.5 * field + 0.6 * ramp)) * np.float32(p["intensity"])
    if valid is not None:
        factor[~valid] = 1
    return x * _rgb(factor.astype(np.float32, copy=False))


def _season(x: np.ndarray, p: dict[str, Any], normals, valid) -> np.ndarray:
    """Autumn or winter colours of encoded ``(H, W, 3)`` ``x`` (a new array)."""
    r, g, b = x[:, :, 0], x[:, :, 1], x[:, :, 2]
    green = np.clip((g - np.maximum(r, b)) * 8, 0, 1) * np.float32(p["amount"])
    if p["kind"] == "autumn":  # the target colour is linear in (r, g, b): a 3x3 matrix
        hue = p["hue"]
        target = np.array([[0, 1.05 + 0.3 * hue, 0], [0, 0.95 - 0.5 * hue, 0], [0, 0, 0.5]], np.float32)
    else:
        target = np.array([0.95, 0.88, 0.8], np.float32)[:, None] * _LUMA[None]
    x = x + _rgb(green) * (cv2.transform(x, target) - x)
    if p["desaturation"] > 0:
        keep = np.float32(1 - p["desaturation"])
        x = cv2.transform(x, keep * np.eye(3, dtype=np.float32) + (1 - keep) * _LUMA[None].repeat(3, 0))
    if p["snow"] > 0 and normals is not None:
        up = -normals[:, :, 1]
        cover = np.clip((up - 0.35) / 0.4, 0, 1) * np.float32(p["snow"])
        if valid is not None:
            cover[~valid] = 0
        x = x + _rgb(cover) * (np.float32(0.93) - x)
    return x


def _night_light(x: np.ndarray, p: dict[str, Any], valid) -> np.ndarray:
    """The lighting of a night scene on linear ``x``: darkened, tinted, with light pools, lamps and glow."""
    h, w = x.shape[:2]
    keep = p["saturation"]
    colour = keep * np.eye(3) + (1 - keep) * np.repeat(_LUMA[None], 3, 0)
    x = cv2.transform(x, (p["gain"] * np.asarray(p["tint"])[:, None] * colour).astype(np.float32))
    surface = None if valid is None else _rgb(valid.astype(np.float32))
    if p["pools"] or valid is not None:
        light = _pools(p["pools"], (h, w))
        if valid is not None:
            light[~valid] = p["sky"]
        x *= _rgb(light)
    if p["lamps"]:
        lamps = _lamps(p["lamps"], (h, w), valid)
        if surface is not None:
            lamps *= surface
        x += lamps
        if p["glow"] > 0:
            glow = _soft(lamps, p["glow_sigma"] * w) * np.float32(p["glow"])
            x += glow if surface is None else glow * surface
    if p["bloom"] > 0:
        x += _soft(np.maximum(x - 0.8, 0), p["bloom_sigma"] * w) * np.float32(p["bloom"])
    return x


def _pools(pools: list[dict[str, Any]], shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` float32 illumination factor: 1 plus broad Gaussian pools of light (street lamps)."""
    h, w = shape
    small = (max(4, w // 8), max(4, h // 8))
    xs, ys = _grid(small[1], small[0])
    light = np.ones(small[::-1], np.float32)
    for pool in pools:
        cx, cy = 2 * pool["centre"][0] - 1, 2 * pool["centre"][1] - 1
        distance2 = (xs - cx) ** 2 + ((ys - cy) * h / w) ** 2
        light += np.float32(pool["gain"]) * np.exp(-distance2 / np.float32(2 * (2 * pool["radius"]) ** 2))
    return cv2.resize(light, (w, h), interpolation=cv2.INTER_LINEAR)


def _lamps(lamps: list[dict[str, Any]], shape: tuple[int, int], valid) -> np.ndarray:
    """``(H, W, 3)`` float32 linear emission of lit windows (rectangles) and lamps (ellipses).

    Only lamps centred on valid pixels are drawn; the caller masks the rest of the emission by ``valid``.
    """
    h, w = shape
    emission = np.zeros((h, w, 3), np.float32)
    for lamp in lamps:
        cx, cy = lamp["centre"][0] * (w - 1), lamp["centre"][1] * (h - 1)
        if valid is not None and not valid[round(cy), round(cx)]:
            continue
        colour = tuple(c * lamp["brightness"] for c in lamp["colour"])
        half = (max(1.0, lamp["size"][0] * w), max(1.0, lamp["size"][1] * w))
        if lamp["shape"] == "window":
            box = cv2.boxPoints(((cx, cy), (2 * half[0], 2 * half[1]), lamp["angle"]))
            cv2.fillConvexPoly(emission, np.round(box * 16).astype(np.int32), colour, cv2.LINE_AA, 4)
        else:
            axes = (round(half[0] * 8), round(half[1] * 8))  # lamps are smaller than windows
            centre = (round(cx * 16), round(cy * 16))
            cv2.ellipse(emission, centre, axes, lamp["angle"], 0, 360, colour, -1, cv2.LINE_AA, 4)
    return emission


def _night_sensor(x: np.ndarray, p: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Linear ``x`` plus shot noise (variance ``shot * x``) and read noise, independent per channel."""
    if p["shot"] <= 0 and p["read"] <= 0:
        return x
    np.maximum(x, 0, out=x)
    sigma = cv2.sqrt(x * np.float32(p["shot"]) + np.float32(p["read"] ** 2))
    # the sum of two uniforms (triangular, standard deviation sqrt(1/6)) is a cheap, Gaussian-like noise
    noise = rng.random(x.shape, dtype=np.float32)
    noise += rng.random(x.shape, dtype=np.float32)
    noise -= 1
    return x + sigma * noise * np.float32(math.sqrt(6))


def _blur(x: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    """Gaussian or linear motion blur of ``(H, W, 3)`` ``x``."""
    if p["kind"] == "gaussian":
        return cv2.GaussianBlur(x, (0, 0), p["sigma"], borderType=cv2.BORDER_REFLECT)
    length = p["length"]
    size = math.ceil(length) | 1
    kernel = np.zeros((size, size), np.float32)
    c, angle = (size - 1) / 2, math.radians(p["angle"])
    dx, dy = 0.5 * length * math.cos(angle), 0.5 * length * math.sin(angle)
    start = (round((c - dx) * 16), round((c - dy) * 16))
    end = (round((c + dx) * 16), round((c + dy) * 16))
    cv2.line(kernel, start, end, 1.0, 1, cv2.LINE_AA, 4)
    if kernel.sum() <= 0:
        return x
    return cv2.filter2D(x, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def _sensor(x: np.ndarray, albedo: np.ndarray, p: dict[str, Any], valid, rng) -> np.ndarray:
    """Encoded ``x`` as another sensor sees it (grey, inverted grey, thermal-like), blended by strength."""
    mode = p["mode"]
    if mode == "thermal":
        converted = _thermal(albedo, p, valid, rng)
    else:
        converted = cv2.transform(x, np.asarray(p["weights"], np.float32)[None])
        if mode == "inverted":
            converted = 1 - converted
    converted = cv2.merge([converted, converted, converted])
    return cv2.addWeighted(x, 1 - p["blend"], converted, p["blend"], 0)


def _thermal(albedo: np.ndarray, p: dict[str, Any], valid, rng) -> np.ndarray:
    """``(H, W)`` thermal-like image: smoothed luminance through the curve, sharpened, cold sky, stripes."""
    y = cv2.GaussianBlur(_luminance(albedo), (0, 0), p["smooth"], borderType=cv2.BORDER_REFLECT)
    table = np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(p["curve"])), p["curve"])
    table = cv2.GaussianBlur(table.astype(np.float32)[None], (0, 0), 12, borderType=cv2.BORDER_REPLICATE)[0]
    index = np.clip(y * 255 + 0.5, 0, 255).astype(np.uint8)
    y = cv2.LUT(index, table)
    y = y + np.float32(p["edges"]) * (y - cv2.GaussianBlur(y, (0, 0), 2.0, borderType=cv2.BORDER_REFLECT))
    if valid is not None:
        y[~valid] = p["sky"]
    if p["stripes"] > 0:
        y = y + rng.standard_normal(y.shape[1], dtype=np.float32)[None] * np.float32(p["stripes"])
    return np.clip(y, 0, 1)


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    """``x`` after a JPEG round trip at ``quality``."""
    encoded = np.round(x * 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", encoded, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        return x
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED).astype(np.float32) * np.float32(1 / 255)
