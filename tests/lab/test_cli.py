"""The ``tiepoint-lab`` command: its groups, the shared options, -v anywhere, and the project's defaults."""

from __future__ import annotations

import argparse
import json
import re
import sys
import types
from pathlib import Path

import pytest

from tiepoint.cliutil import is_verbose
from tiepoint_lab import cli
from tiepoint_lab.cli import build_parser, main
from tiepoint_lab.paths import BENCHMARKS, photo_list, shared_data

GROUPS = {
    "data": ["photos", "scenes", "relit"],
    "train": ["clidd", "eloftr", "raco", "glue", "upsampler"],
    "ship": ["clidd", "eloftr", "raco", "glue", "upsampler"],
    "bench": ["match", "solvers", "clidd-cost", "raco", "upsamplers", "reconstruction"],
    "docs": [],
}


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def _listed(capsys, argv: list[str]) -> list[str]:
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    return re.findall(r"^    (\S+)", capsys.readouterr().out, re.MULTILINE)


def test_help_lists_the_groups_and_their_commands(capsys):
    assert _listed(capsys, []) == list(GROUPS)
    for group, commands in GROUPS.items():
        if commands:
            assert _listed(capsys, [group]) == commands
            assert list(_commands(_commands(build_parser())[group])) == commands


def test_every_command_parses_with_its_defaults():
    parser = build_parser()
    required = {
        ("ship", "clidd"): ["RUN", "--size", "A48"],
        ("ship", "eloftr"): ["RUN"],
        ("ship", "raco"): ["RUN", "--stage", "ranker"],
        ("ship", "glue"): ["RUN", "--features", "sift"],
        ("ship", "upsampler"): ["RUN", "--backbone", "effl0", "--method", "jbu"],
        ("train", "upsampler"): ["--backbone", "effl0", "--method", "jbu"],
        ("bench", "clidd-cost"): ["sizes"],
        ("data", "relit"): ["--dataset", "oxford", "--out", "OUT"],
    }
    for group, commands in GROUPS.items():
        for command in commands or [None]:
            argv = [group] + ([command] if command else []) + required.get((group, command), [])
            args = parser.parse_args(argv)
            assert args.command == " ".join(argv[:2] if command else argv[:1]) and callable(args.func)


def test_training_options_come_from_one_table():
    parser = build_parser()
    for model, recipe in cli.TRAINING.items():
        extra = ["--backbone", "effl0", "--method", "jbu"] if model == "upsampler" else []
        args = parser.parse_args(["train", model, *extra])
        assert (args.steps, args.batch_size, args.lr, args.validate_every, args.seed) == (
            recipe.steps,
            recipe.batch_size,
            recipe.lr,
            recipe.validate_every,
            0,
        )
        assert args.photos == cli.PHOTOS
    source = Path(cli.__file__).read_text()
    for option in (
        "--photos",
        "--seed",
        "--lr",
        "--steps",
        "--batch-size",
        "--validate-every",
        "--benchmark",
        "--stream",
    ):
        assert source.count(f'"{option}"') == 1, option


def test_every_pair_trainer_reads_a_stream():
    from tiepoint_lab.data.mix import STREAMS

    assert cli.STREAM_NAMES == tuple(STREAMS)
    parser = build_parser()
    upsampler = ["--backbone", "effl0", "--method", "jbu"]
    for model in ("clidd", "eloftr", "raco"):
        assert parser.parse_args(["train", model]).stream == "homography"
        assert parser.parse_args(["train", model, "--stream", "mix"]).stream == "mix"
        assert "stream" in cli.RECIPES[model].options
    assert parser.parse_args(["train", "upsampler", *upsampler]).stream is None  # random photo crops
    assert parser.parse_args(["train", "upsampler", *upsampler, "--stream", "scenes"]).stream == "scenes"
    assert "stream" in cli.RECIPES["upsampler"].options


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "train", "clidd"],
        ["train", "-v", "clidd"],
        ["train", "clidd", "-v"],
        ["--verbose", "bench", "match"],
        ["bench", "match", "--dataset", "oxford", "--verbose"],
        ["docs", "-v"],
    ],
)
def test_verbose_works_wherever_it_is_placed(argv):
    assert is_verbose(build_parser().parse_args(argv))


def test_verbose_is_off_unless_given():
    assert not is_verbose(build_parser().parse_args(["train", "clidd"]))


def test_the_project_defaults_come_from_the_lab_paths():
    parser = build_parser()
    assert parser.parse_args(["data", "photos"]).tsv == photo_list()
    assert parser.parse_args(["bench", "match"]).output == BENCHMARKS / "match"
    for name in ("solvers", "raco", "upsamplers", "reconstruction"):
        assert parser.parse_args(["bench", name]).output == BENCHMARKS / name
    assert parser.parse_args(["bench", "reconstruction"]).method == "sift"


def test_ship_names_a_corrupt_benchmark_file(tmp_path, capsys):
    scores = tmp_path / "scores.json"
    scores.write_text("{not json")
    # the scores are read before anything is shipped, so the package's weights are never touched
    assert main(["ship", "clidd", str(tmp_path / "run"), "--size", "A48", "--benchmark", str(scores)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("tiepoint-lab ship clidd: error:")
    assert "--benchmark" in error and "scores.json" in error and "Traceback" not in error


@pytest.mark.parametrize("environment", [None, "elsewhere"])
def test_bench_match_runs_the_core_benchmark_on_the_shared_data(tmp_path, monkeypatch, capsys, environment):
    from tiepoint import evaluation

    calls = {}

    def run_benchmarks(datasets, methods, root=None, **kwargs):
        calls.update(datasets=datasets, methods=methods, root=root, **kwargs)
        return []

    def write_report(results, output, append=False):
        calls.update(output=output, append=append)
        return [Path(output) / "results.json"]

    if environment is None:
        monkeypatch.delenv("TIEPOINT_DATA", raising=False)
    else:
        monkeypatch.setenv("TIEPOINT_DATA", environment)
    monkeypatch.setattr(evaluation, "run_benchmarks", run_benchmarks)
    monkeypatch.setattr(evaluation, "write_report", write_report)
    monkeypatch.setattr(evaluation, "format_table", lambda results: "table")
    argv = [
        "bench",
        "match",
        "--dataset",
        "oxford",
        "--methods",
        "sift",
        "--option",
        "extractor.threshold=0.2",
    ]
    assert main([*argv, "--output", str(tmp_path), "--append"]) == 0
    # with $TIEPOINT_DATA set the core searches its folders; else the shared data beside the repository
    assert calls["root"] == (shared_data() if environment is None else None)
    assert calls["datasets"] == ["oxford"] and calls["methods"] == ["sift"]
    assert calls["method_options"] == {"extractor.threshold": 0.2}
    assert calls["output"] == tmp_path and calls["append"] is True
    assert main([*argv, "--output", str(tmp_path), "--root", str(tmp_path / "data")]) == 0
    assert calls["root"] == tmp_path / "data"
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("status", [0, 1])
def test_docs_calls_the_docs_module(monkeypatch, status):
    seen = []

    def fake_main(check: bool = False) -> int:
        seen.append(check)
        return status

    monkeypatch.setitem(sys.modules, "tiepoint_lab.docs", types.SimpleNamespace(main=fake_main))
    assert main(["docs", "--check"]) == status
    assert main(["docs"]) == status
    assert seen == [True, False]


def test_bench_clidd_cost_end_to_end(tmp_path, capsys):
    output = tmp_path / "cost.json"
    assert (
        main(["bench", "clidd-cost", "sizes", "--sizes", "A48", "--repeats", "1", "--output", str(output)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "A48" in printed and f"wrote {output}" in printed
    assert [row["size"] for row in json.loads(output.read_text())["rows"]] == ["A48"]
