"""The documentation: generated tables match the committed records, the README stays short, links resolve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tiepoint_lab import docs
from tiepoint_lab.paths import REPOSITORY

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _pages() -> list[Path]:
    return [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]


def test_generated_tables_are_up_to_date(capsys):
    status = docs.main(check=True)
    assert status == 0, f"stale tables; run `tiepoint-lab docs`:\n{capsys.readouterr().out}"


def test_every_table_is_used_once():
    texts = [docs.FENCE.sub("", page.read_text()) for page in _pages()]  # markers in code blocks are examples
    used = [match["name"] for text in texts for match in docs.MARKER.finditer(text)]
    assert sorted(used) == sorted(docs.TABLES)


def test_readme_is_short():
    lines = (REPOSITORY / "README.md").read_text().splitlines()
    assert len(lines) <= 300


@pytest.mark.parametrize("page", _pages(), ids=lambda path: path.name)
def test_relative_links_resolve(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{page.name}: link to {target} points to nothing"


def _record(path: Path, mha: float) -> None:
    result = {
        "dataset": "oxford",
        "method": "sift",
        "method_options": {"ratio": 0.9},
        "summary": {"mha@3px": mha},
        "timing": {},
        "records": [],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"results": [result]}))


def test_generator_rewrites_and_checks(tmp_path, capsys):
    _record(tmp_path / "benchmarks" / "toy" / "results.json", 0.725)
    rows = [docs.Row("`sift`", "toy/results.json", "sift", {"ratio": 0.9})]
    columns = [docs.Column("MHA@3", "oxford", docs.summary("mha@3px"))]
    tables = {"toy": lambda benchmarks: docs.bench_table(benchmarks, rows, columns, source=False)}
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    page.write_text(
        "Before.\n\n<!-- table:toy -->\n<!-- /table -->\n\n```\n<!-- table:toy -->\n```\nAfter.\n"
    )

    assert docs.main(check=True, root=tmp_path, tables=tables) == 1
    assert "page.md" in capsys.readouterr().out
    assert "| `sift` |" not in page.read_text()  # a check writes nothing

    assert docs.main(root=tmp_path, tables=tables) == 0
    text = page.read_text()
    assert "| method | MHA@3 |\n| --- | --: |\n| `sift` | 72.5 |\n<!-- /table -->" in text
    assert text.startswith("Before.") and text.endswith("```\n<!-- table:toy -->\n```\nAfter.\n")
    assert docs.main(check=True, root=tmp_path, tables=tables) == 0

    _record(tmp_path / "benchmarks" / "toy" / "results.json", 0.75)  # the record changes: the page is stale
    assert docs.main(check=True, root=tmp_path, tables=tables) == 1
    assert "toy" in capsys.readouterr().out


def test_generator_refuses_unknown_tables_and_runs(tmp_path):
    _record(tmp_path / "benchmarks" / "toy" / "results.json", 0.725)
    with pytest.raises(KeyError, match="unknown table"):
        docs.render("<!-- table:nope -->\n<!-- /table -->\n", tmp_path / "benchmarks", {})
    rows = [docs.Row("`orb`", "toy/results.json", "orb")]
    columns = [docs.Column("MHA@3", "oxford", docs.summary("mha@3px"))]
    with pytest.raises(KeyError, match="no result of orb"):
        docs.bench_table(tmp_path / "benchmarks", rows, columns)
