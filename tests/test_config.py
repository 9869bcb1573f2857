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
