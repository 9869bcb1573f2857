"""The product boundary: the core package never reaches into the lab, this project's data or its machines."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "tiepoint"

FORBIDDEN_TEXT = ("../shared", "shared/data", "apt-get", "dpkg", "tiepoint_lab")
"""Strings no core source file may contain: the lab, this project's data folder and Debian tools."""

LAB_PREFIXES = ("tiepoint_lab", "tiepoint.evaluation")
"""Modules that importing the library, matching a pair or loading the CLI must not load."""


def _core_sources() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_core_sources_exist():
    assert len(_core_sources()) > 50


@pytest.mark.parametrize("path", _core_sources(), ids=lambda p: str(p.relative_to(CORE.parent)))
def test_core_never_imports_the_lab(path):
    lab = {name for name in _imported_modules(path) if name.split(".")[0] == "tiepoint_lab"}
    assert not lab, f"{path} imports {sorted(lab)}: the core must never import the lab"


@pytest.mark.parametrize("path", _core_sources(), ids=lambda p: str(p.relative_to(CORE.parent)))
def test_core_names_no_project_folder_or_tool(path):
    text = path.read_text()
    found = [word for word in FORBIDDEN_TEXT if word in text]
    assert not found, f"{path} names {found}: keep this project's data, folders and tools in the lab"


def _modules_loaded_by(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import tiepoint",
        "import tiepoint.cli",
        (
            "import numpy as np, tiepoint\n"
            "rng = np.random.default_rng(0)\n"
            "image = (rng.random((96, 128, 3)) * 255).astype(np.uint8)\n"
            "tiepoint.match(image, image, method='sift')"
        ),
    ],
    ids=["import", "cli", "match"],
)
def test_library_use_loads_no_lab_module(code):
    loaded = [m for m in _modules_loaded_by(code) if m.startswith(LAB_PREFIXES)]
    assert not loaded, f"{code!r} loaded {loaded}"
