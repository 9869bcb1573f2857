"""The ``tiepoint`` command. It only parses arguments and calls library functions.

    tiepoint demo                       match the bundled pair with ground truth, print scores, draw a figure
    tiepoint match A B [--model ...]    match two images, estimate geometry, write a figure and HDF5 files
    tiepoint extract IMAGES OUT.h5      extract features of many images into an HDF5 file (resumable)
    tiepoint methods                    list the registered methods
    tiepoint bench --dataset ...        benchmark methods on real data with ground truth
    tiepoint bench-solvers --output D   compare the robust estimators (GNC, SDP, BnB vs RANSAC)
    tiepoint data photos                build the training photo corpus from ../shared/data/photos.tsv
    tiepoint train clidd --size A48     train a CLIDD size (resumable), then 'tiepoint train ship RUN'
"""

from __future__ import annotations

import argparse
import ast
import logging
import sys
from pathlib import Path
from typing import Any

from .errors import TiepointError


def _parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["ratio=0.9", "root=False"]`` -> ``{"ratio": 0.9, "root": False}`` (strings stay strings)."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TiepointError(f"--option expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return options


def _method_options(args: argparse.Namespace) -> dict[str, Any]:
    options = _parse_options(args.option)
    if getattr(args, "max_keypoints", None) is not None:
        options["max_keypoints"] = args.max_keypoints
    return options


def cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    result = run_demo(method=args.method, output_dir=args.output, estimator=args.estimator)
    print(result.summary())


def cmd_match(args: argparse.Namespace) -> None:
    from .pipeline.match import match_pair

    result = match_pair(
        args.image0,
        args.image1,
        method=args.method,
        model=None if args.model == "none" else args.model,
        estimator=args.estimator,
        threshold=args.threshold,
        output_dir=args.output,
        **_method_options(args),
    )
    print(result.summary())


def cmd_extract(args: argparse.Namespace) -> None:
    from .pipeline.extract import extract_features

    summary = extract_features(
        args.images,
        args.output,
        method=args.method,
        image_root=args.image_root,
        overwrite=args.overwrite,
        as_half=args.half,
        **_method_options(args),
    )
    print(
        f"{args.output}: {len(summary.extracted)} extracted, {len(summary.skipped)} already there, "
        f"{len(summary.failed)} failed ({summary.seconds:.1f} s)"
    )
    for name, reason in summary.failed[:10]:
        print(f"  failed: {name}: {reason}")
    if len(summary.failed) > 10:
        print(f"  ... and {len(summary.failed) - 10} more (run with -v to see every warning)")


def cmd_methods(args: argparse.Namespace) -> None:
    from .api import DEFAULT_METHOD, methods

    listed = methods()
    width = max(len(m.name) for m in listed)
    for m in listed:
        print(f"{m.name:<{width}}  {m.kind:<6}  {m.summary}")
    print(f"\ndefault method: {DEFAULT_METHOD}; an extractor name alone (e.g. 'sift') uses its default matcher")


def cmd_bench(args: argparse.Namespace) -> None:
    from .bench import format_table, run_benchmarks, write_report

    overrides = {} if args.max_keypoints is None else {"max_keypoints": args.max_keypoints}
    results = run_benchmarks(
        args.dataset,
        args.methods,
        root=args.root,
        estimator=args.estimator,
        threshold=args.threshold,
        resize=args.resize,
        progress=not args.quiet,
        **overrides,
        **_parse_options(args.option),
    )
    print(format_table(results))
    if args.output:
        for path in write_report(results, args.output, append=args.append):
            print(f"wrote {path}")


def cmd_data_photos(args: argparse.Namespace) -> None:
    from .train.photos import build_photo_corpus

    summary = build_photo_corpus(
        args.tsv, args.out, cache=args.cache, max_edge=args.max_edge, quality=args.quality,
        evaluation_root=None if args.no_content_check else args.tsv.parent, keep_debs=not args.drop_debs,
        progress=None if args.quiet else print,
    )
    print(
        f"{args.out}: {len(summary.written)} written, {len(summary.existing)} already there, "
        f"{len(summary.skipped)} skipped; train {summary.counts['train']}, val {summary.counts['val']}, "
        f"{summary.total_bytes / 1e6:.1f} MB"
    )
    for path, reason in summary.skipped:
        print(f"  skipped: {path}: {reason}")


def cmd_bench_clidd(args: argparse.Namespace) -> None:
    from .bench.cost import clidd_costs, format_cost_table
    from .bench.sampler import benchmark_sampler, format_sampler_table
    from .features.clidd import SIZES
    from .io.files import write_json

    if args.what == "sampler":
        result = benchmark_sampler(sizes=tuple(args.sizes or ("A48", "S96", "U128")), repeats=args.repeats)
        print(format_sampler_table(result))
    else:
        result = clidd_costs(sizes=tuple(args.sizes or SIZES), repeats=args.repeats)
        print(format_cost_table(result))
    if args.output:
        write_json(args.output, result)
        print(f"wrote {args.output}")


def cmd_train_clidd(args: argparse.Namespace) -> None:
    from .train.clidd import train_clidd

    scores = train_clidd(
        args.size, args.photos, args.out or Path(f"runs/clidd_{args.size.lower()}"), targets=args.targets,
        pairs=args.pairs, steps=args.steps,
        batch_size=args.batch_size, crop=args.crop, learning_rate=args.lr, device=args.device,
        workers=args.workers, seed=args.seed, validate_every=args.validate_every,
    )
    print("final validation: " + " ".join(f"{k}={v:.4f}" for k, v in scores.items()))


def cmd_train_ship(args: argparse.Namespace) -> None:
    import json

    from .train.clidd import ship

    benchmark = json.loads(args.benchmark.read_text()) if args.benchmark else None
    print(f"wrote {ship(args.run, args.size, benchmark)}")


def cmd_bench_solvers(args: argparse.Namespace) -> None:
    from .bench.solvers import SweepConfig, run_solver_benchmark

    sweep = SweepConfig(trials=args.trials, models=tuple(args.models))
    for path in run_solver_benchmark(
        args.output, datasets=tuple(args.dataset), method=args.method, root=args.root, sweep=sweep,
        synthetic=not args.no_synthetic, progress=not args.quiet,
    ):  # fmt: skip
        print(f"wrote {path}")
    print((args.output / "table.txt").read_text())


def build_parser() -> argparse.ArgumentParser:
    from .api import DEFAULT_METHOD

    parser = argparse.ArgumentParser(prog="tiepoint", description="Tie points between images, turned into geometry.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_method_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--method", default=DEFAULT_METHOD, help=f"method name (default {DEFAULT_METHOD}; see `tiepoint methods`)")
        p.add_argument("--max-keypoints", type=int, help="keypoint budget per image")
        p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a method option, e.g. ratio=0.9 (repeatable)")

    p = commands.add_parser("demo", help="match the bundled stereo pair and score it against its ground truth")
    p.add_argument("--method", default=DEFAULT_METHOD)
    p.add_argument("--estimator", default="poselib", choices=["poselib", "opencv"])
    p.add_argument("--output", type=Path, default=Path("outputs/demo"), help="folder for the figure")
    p.set_defaults(func=cmd_demo)

    p = commands.add_parser("match", help="match two images, estimate geometry, write figure and files")
    p.add_argument("image0", type=Path)
    p.add_argument("image1", type=Path)
    add_method_arguments(p)
    p.add_argument("--model", default="homography", choices=["homography", "fundamental", "none"],
                   help="geometry to estimate (relative pose needs intrinsics: use the Python API)")
    p.add_argument("--estimator", default="poselib", choices=["poselib", "opencv"])
    p.add_argument("--threshold", type=float, help="inlier threshold in pixels (default per model)")
    p.add_argument("--output", type=Path, default=Path("outputs/match"),
                   help="folder for matches.png, features.h5, matches.h5 and summary.json")
    p.set_defaults(func=cmd_match)

    p = commands.add_parser("extract", help="extract features of a folder or list of images into HDF5")
    p.add_argument("images", type=Path, help="a folder of images or a text file listing image paths")
    p.add_argument("output", type=Path, help="the HDF5 feature file (resumed if it exists)")
    add_method_arguments(p)
    p.add_argument("--image-root", type=Path, help="image names are stored relative to this folder")
    p.add_argument("--overwrite", action="store_true", help="re-extract images already in the file")
    p.add_argument("--half", action="store_true", help="store float descriptors as float16")
    p.set_defaults(func=cmd_extract)

    p = commands.add_parser("methods", help="list the registered methods")
    p.set_defaults(func=cmd_methods)

    p = commands.add_parser("bench", help="benchmark methods on datasets with ground truth")
    p.add_argument("--dataset", nargs="+", default=["oxford", "middlebury"],
                   help="oxford, hpatches, middlebury, pairs:FILE or synthetic:FOLDER")
    p.add_argument("--methods", nargs="+", default=[DEFAULT_METHOD])
    p.add_argument("--root", type=Path, help="dataset folder, or a folder holding it; default: $TIEPOINT_DATA or ../shared/data")
    p.add_argument("--estimator", help="robust estimator (default: the benchmark's protocol, poselib)")
    p.add_argument("--threshold", type=float, help="inlier threshold in pixels (default: the benchmark's protocol)")
    p.add_argument("--max-keypoints", type=int, help="keypoint budget (default: the protocol's, 2048)")
    p.add_argument("--resize", type=int, help="shrink images to this longer side first (default: native size)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a method option (repeatable)")
    p.add_argument("--output", type=Path, help="folder for results.json and mma.png")
    p.add_argument("--append", action="store_true",
                   help="keep the results already in OUTPUT/results.json (same dataset and method are replaced)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_bench)

    p = commands.add_parser("bench-solvers", help="compare robust estimators on synthetic sweeps and real pairs")
    p.add_argument("--output", type=Path, required=True, help="folder for solvers.json, table.txt, synthetic.png")
    p.add_argument("--dataset", nargs="*", default=["oxford", "middlebury"], help="real datasets (none: skip)")
    p.add_argument("--method", default="sift", help="the matching method whose matches the solvers fit")
    p.add_argument("--root", type=Path, help="dataset folder; default: $TIEPOINT_DATA or ../shared/data")
    p.add_argument("--models", nargs="+", default=["homography", "fundamental", "relative_pose", "rotation"],
                   help="synthetic models to sweep")
    p.add_argument("--trials", type=int, default=3, help="synthetic problems per sweep cell")
    p.add_argument("--no-synthetic", action="store_true", help="only the real datasets")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_bench_solvers)

    p = commands.add_parser("bench-clidd", help="CLIDD costs: the fused sampler against the reference, or each size's cost")
    p.add_argument("what", choices=["sampler", "sizes"], help="sampler: fused vs reference at 1k/4k/8k keypoints; "
                   "sizes: parameters, GFLOPs and CPU time of each size at 640x480")
    p.add_argument("--sizes", nargs="+", help="CLIDD sizes (default: all, or A48 S96 U128 for the sampler)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per measurement (the median is reported)")
    p.add_argument("--output", type=Path, help="write the result as JSON")
    p.set_defaults(func=cmd_bench_clidd)

    p = commands.add_parser("data", help="prepare training data")
    data_commands = p.add_subparsers(dest="data_command", required=True, metavar="WHAT")
    p = data_commands.add_parser("photos", help="build the training photo corpus from a photo list (resumable)")
    p.add_argument("--tsv", type=Path, default=Path("../shared/data/photos.tsv"), help="the photo list")
    p.add_argument("--out", type=Path, default=Path("data/photos"), help="corpus folder (JPEGs + manifest.json)")
    p.add_argument("--cache", type=Path, help="folder for downloaded .deb files (default: OUT/../cache/debs)")
    p.add_argument("--max-edge", type=int, default=960, help="longer side of the stored copies in pixels")
    p.add_argument("--quality", type=int, default=92, help="JPEG quality of the stored copies")
    p.add_argument("--drop-debs", action="store_true", help="delete each downloaded package once read")
    p.add_argument("--no-content-check", action="store_true",
                   help="do not compare photos with the evaluation images beside the list (names are still checked)")
    p.add_argument("--quiet", action="store_true", help="no line per photo")
    p.set_defaults(func=cmd_data_photos)

    p = commands.add_parser("train", help="train a model (resumable: rerun the same command to continue)")
    train_commands = p.add_subparsers(dest="train_command", required=True, metavar="MODEL")
    p = train_commands.add_parser("clidd", help="train a CLIDD size by distillation from ALIKED-N32")
    p.add_argument("--size", default="A48", help="A48, P64, N64, T64, S96, M128, G128, E128 or U128")
    p.add_argument("--photos", type=Path, default=Path("data/photos"), help="corpus from 'tiepoint data photos'")
    p.add_argument("--out", type=Path, help="run folder (default: runs/clidd_<size>)")
    p.add_argument("--targets", type=Path, help="teacher-targets folder (default: runs/targets/aliked-n32-CROP)")
    p.add_argument("--pairs", type=int, default=1200, help="training pairs whose teacher targets are stored")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=8, help="image pairs per step")
    p.add_argument("--crop", type=int, default=256, help="side of the training images in pixels")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW, cosine schedule)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (bfloat16 autocast on cuda)")
    p.add_argument("--workers", type=int, default=2, help="data-loading processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--validate-every", type=int, default=500, help="steps between validations")
    p.set_defaults(func=cmd_train_clidd)
    p = train_commands.add_parser("ship", help="copy a run's best CLIDD weights into the package with their record")
    p.add_argument("run", type=Path, help="the run folder")
    p.add_argument("--size", required=True, help="the CLIDD size the run trained")
    p.add_argument("--benchmark", type=Path, help="a JSON file of benchmark scores to record with the weights")
    p.set_defaults(func=cmd_train_ship)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except (TiepointError, ValueError, KeyError, OSError) as error:  # bad input, missing files, full disks
        if args.verbose:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"tiepoint {args.command}: error: {message} (run with -v for the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tiepoint {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
