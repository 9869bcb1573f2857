"""Typed configurations: each configurable class declares a dataclass ``Config`` with its defaults.

:func:`make_config` builds one from keyword options and rejects unknown names with the list of valid ones,
so a typo in an option never passes silently. It also checks the type of every value given for a field
declared ``int``, ``float`` or ``bool`` (optionally ``| None``): ``True`` is not a number there (although
Python's ``bool`` is an ``int``), ``2.5`` is not an ``int`` and ``1`` is not a ``bool``; an ``int`` is a
valid ``float``. Ranges are each ``Config``'s own ``__post_init__``.
"""

from __future__ import annotations

import ast
import numbers
from collections.abc import Mapping
from dataclasses import Field, fields
from typing import Any, TypeVar

import numpy as np

from .errors import OptionError

C = TypeVar("C")


def option_names(config_class: type) -> set[str]:
    """The option names a ``Config`` dataclass declares."""
    return {f.name for f in fields(config_class)}


def make_config(config_class: type[C], options: Mapping[str, Any], owner: str) -> C:
    """Build ``config_class(**options)``, naming ``owner`` in the error for an unknown or invalid option."""
    unknown = set(options) - option_names(config_class)
    if unknown:
        raise OptionError(
            f"{owner}: unknown option(s) {sorted(unknown)}; "
            f"valid options are {sorted(option_names(config_class))}"
        )
    declared = {f.name: f for f in fields(config_class)}
    for name, value in options.items():
        problem = _type_problem(declared[name], value)
        if problem:
            raise OptionError(f"{owner}: option {name!r} must be {problem}, got {value!r}")
    try:
        return config_class(**options)
    except (TypeError, ValueError) as error:
        raise OptionError(f"{owner}: {error}") from None


_SCALARS = {"int": "an integer", "float": "a number", "bool": "True or False"}


def _declared_scalars(field: Field) -> tuple[set[str], bool] | None:
    """The scalar types (``int``, ``float``, ``bool``) a field is declared with, and whether ``None`` is
    allowed; ``None`` when the field is declared with anything else (left unchecked)."""
    annotation = field.type
    if not isinstance(annotation, str):  # a module without ``from __future__ import annotations``
        annotation = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    names = {part.strip() for part in annotation.split("|")}
    optional = "None" in names
    names.discard("None")
    if not names or not names <= set(_SCALARS):
        return None
    return names, optional


def _type_problem(field: Field, value: Any) -> str | None:
    """What ``value`` should have been for ``field`` (e.g. ``"an integer"``), or ``None`` when it fits."""
    declared = _declared_scalars(field)
    if declared is None:
        return None
    names, optional = declared
    if value is None and optional:
        return None
    is_bool = isinstance(value, (bool, np.bool_))
    fits = (
        ("bool" in names and is_bool)
        or ("int" in names and not is_bool and isinstance(value, numbers.Integral))
        or ("float" in names and not is_bool and isinstance(value, numbers.Real))
    )
    if fits:
        return None
    wanted = " or ".join(_SCALARS[name] for name in sorted(names))
    return wanted + (" or None" if optional else "")


def check_positive(value: float | None, name: str, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive number (or ``None`` where allowed)."""
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def check_fraction(value: float, name: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a number in ``[0, 1)``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["ratio=0.9", "extractor.threshold=0.2"]`` -> ``{"ratio": 0.9, "extractor.threshold": 0.2}``: values
    are Python literals, anything else stays a string (the command line's ``--option KEY=VALUE``). A dotted
    key addresses one part of a method and stays as it is (:func:`tiepoint.registry.build_method` routes
    it)."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not all(key.split(".")):
            raise OptionError(f"--option expects KEY=VALUE or PART.KEY=VALUE, got {pair!r}")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """A name with options after a colon, separated by ``;``, as scripts take them on their command line:
    ``"clidd-s96:scales=(1,0.5);max_keypoints=1024"`` ->
    ``("clidd-s96", {"scales": (1, 0.5), "max_keypoints": 1024})``."""
    name, _, options = spec.partition(":")
    return name, parse_options([option for option in options.split(";") if option])
