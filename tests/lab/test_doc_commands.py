"""Every command the README and docs show parses as written with the command line it names."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tiepoint import cli
from tiepoint_lab import cli as lab_cli
from tiepoint_lab.paths import REPOSITORY

FENCED = re.compile(r"```[a-z]*\n(.*?)```", re.DOTALL)
PLACEHOLDER = re.compile(r"[{}\[\]]|\.\.\.")
"""Synopsis lines (``{a,b}``, ``[--check]``, ``...``) are not meant to be run as written."""

PARSERS = {"tiepoint": cli.build_parser, "tiepoint-lab": lab_cli.build_parser}


def _commands() -> list[tuple[str, str]]:
    """``(page, command line)`` for each runnable tiepoint or tiepoint-lab line in a code block."""
    found = []
    for page in [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]:
        for block in FENCED.findall(page.read_text()):
            block = block.replace("\\\n", " ")  # shell line continuations
            for line in block.splitlines():
                line = line.strip().removeprefix("$ ")
                if line.split(" ", 1)[0] not in PARSERS:
                    continue
                words = shlex.split(line, comments=True)
                if not PLACEHOLDER.search(" ".join(words)):
                    found.append((Path(page).name, " ".join(words)))
    return found


def test_pages_show_commands():
    assert len(_commands()) > 20


@pytest.mark.parametrize(("page", "command"), _commands(), ids=lambda value: value)
def test_command_parses(page, command):
    words = shlex.split(command)
    try:
        PARSERS[words[0]]().parse_args(words[1:])
    except SystemExit as error:
        pytest.fail(f"{page}: `{command}` does not parse (exit {error.code})")
