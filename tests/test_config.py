"""Option parsing shared by the command line and the benchmark scripts."""

import pytest

from tiepoint.config import parse_options, parse_spec
from tiepoint.errors import OptionError


def test_option_values_are_python_literals_or_strings():
    options = parse_options(
        ["ratio=0.9", "root=False", "scales=(1,0.5)", "weights=runs/a.pt", "rotations=(0,90,180,270)"]
    )
    assert options == {
        "ratio": 0.9,
        "root": False,
        "scales": (1, 0.5),
        "weights": "runs/a.pt",
        "rotations": (0, 90, 180, 270),
    }
    assert parse_options(None) == {}


@pytest.mark.parametrize("bad", ["ratio", "=0.9"])
def test_an_option_without_key_or_value_is_an_error(bad):
    with pytest.raises(OptionError, match="KEY=VALUE"):
        parse_options([bad])


def test_spec_splits_the_name_from_its_options():
    assert parse_spec("sift") == ("sift", {})
    assert parse_spec("clidd-s96:scales=(1,0.5);max_keypoints=1024") == (
        "clidd-s96",
        {"scales": (1, 0.5), "max_keypoints": 1024},
    )
    assert parse_spec("eloftr:rotations=(0,180)") == ("eloftr", {"rotations": (0, 180)})


# --- issue 26: option types are checked in one place


def _config():
    from dataclasses import dataclass

    @dataclass
    class Config:
        count: int = 1
        limit: int | None = None
        scale: float = 1.0
        flag: bool = True
        name: str = "a"

    return Config


@pytest.mark.parametrize(
    "options, message",
    [
        ({"count": True}, "option 'count' must be an integer, got True"),
        ({"count": 2.5}, "option 'count' must be an integer, got 2.5"),
        ({"count": "3"}, "option 'count' must be an integer"),
        ({"limit": False}, "option 'limit' must be an integer or None, got False"),
        ({"scale": True}, "option 'scale' must be a number, got True"),
        ({"scale": "fast"}, "option 'scale' must be a number"),
        ({"flag": 1}, "option 'flag' must be True or False, got 1"),
        ({"flag": "False"}, "option 'flag' must be True or False"),
    ],
)
def test_option_of_the_wrong_type_is_refused_naming_it(options, message):
    from tiepoint.config import make_config

    with pytest.raises(OptionError, match=f"^thing: {message}"):
        make_config(_config(), options, "thing")


def test_options_of_the_right_type_pass():
    import numpy as np

    from tiepoint.config import make_config

    config = make_config(
        _config(), {"count": np.int64(3), "limit": None, "scale": 2, "flag": np.bool_(False)}, "thing"
    )
    assert config.count == 3 and config.scale == 2 and not config.flag


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_keypoints": True}, "'max_keypoints' must be an integer, got True"),
        ({"max_keypoints": 2.5}, "'max_keypoints' must be an integer, got 2.5"),
        ({"ratio": 1.5}, r"ratio must be in \(0, 1\]"),
        ({"ratio": 0}, r"ratio must be in \(0, 1\]"),
    ],
)
def test_method_options_are_checked(options, message):
    from tiepoint.registry import get_method

    with pytest.raises(OptionError, match=message):
        get_method("sift", **options)
