"""The ``tiepoint`` command. It only parses arguments and calls library functions.

    tiepoint demo                       match the bundled pair with ground truth, print scores, draw a figure
    tiepoint match A B [--model ...]    match two images, estimate geometry, write a figure and HDF5 files
    tiepoint extract IMAGES OUT.h5      extract features of many images into an HDF5 file (resumable)
    tiepoint methods                    list the registered methods
    tiepoint reconstruct IMAGES OUT     features, pairs, matches, verification, COLMAP mapping (resumable;
                                        stages: extract, pairs, match-pairs, verify, colmap-import, map;
                                        with --method eloftr: match-dense and merge-dense instead of the first three)
    tiepoint bench --dataset ...        benchmark methods on real data with ground truth
    tiepoint bench-solvers --output D   compare the robust estimators (GNC, SDP, BnB vs RANSAC)
    tiepoint data photos                build the training photo corpus from ../shared/data/photos.tsv
    tiepoint train clidd --size A48     train a CLIDD size (resumable), then 'tiepoint train ship RUN'
    tiepoint train raco --stage detector   train RaCo (then --stage ranker), then 'tiepoint train ship-raco RUN'
    tiepoint bench-raco --output D      RaCo reports: repeatability vs budget and rotation, calibration, weighting
    tiepoint train eloftr               train Efficient LoFTR (resumable), then 'tiepoint train ship-eloftr RUN'
    tiepoint train upsampler --backbone B --method M   train a feature upsampler, then 'tiepoint train ship-upsampler RUN'
    tiepoint bench-upsamplers --output D   upsamplers vs bilinear: consistency, correspondence, time, memory
    tiepoint export out.onnx --size T64 export a CLIDD extractor to ONNX (--check IMAGE: compare with onnxruntime);
                                        --model eloftr [--optimized] --check-pair A B for Efficient LoFTR
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from .config import parse_options
from .errors import CorruptFileError, TiepointError

INCOMPLETE = 1
"""Exit status of a batch stage (extract, match-pairs, match-dense, verify) some of whose images or pairs failed:
the finished ones are saved, and running the same command again retries the rest. Scripts (``set -e``) stop there."""


def _method_options(args: argparse.Namespace) -> dict[str, Any]:
    options = parse_options(args.option)
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


def cmd_extract(args: argparse.Namespace) -> int:
    from .pipeline.extract import extract_features

    with _backend(args) as backend:
        summary = extract_features(
            args.images,
            args.output,
            method=args.method,
            image_root=args.image_root,
            overwrite=args.overwrite,
            as_half=args.half,
            backend=backend,
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
    return INCOMPLETE if summary.failed else 0


def cmd_methods(args: argparse.Namespace) -> None:
    from .api import DEFAULT_METHOD, RECONSTRUCTION_METHOD, methods

    listed = methods()
    width = max(len(m.name) for m in listed)
    for m in listed:
        print(f"{m.name:<{width}}  {m.kind:<6}  {m.summary}")
    print(f"\ndefault method: {DEFAULT_METHOD} (feature-file pipelines: {RECONSTRUCTION_METHOD}); "
          "an extractor name alone (e.g. 'sift') uses its default matcher")


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
        method_options=parse_options(args.option),
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


def cmd_export(args: argparse.Namespace) -> None:
    if args.model == "eloftr":
        return _export_eloftr(args)
    from .export import check_onnx, export_clidd
    from .features.clidd import CLIDDModel

    model = CLIDDModel.from_pretrained(args.size, args.weights)
    path = export_clidd(args.output, model=model, image_size=(args.height, args.width), max_keypoints=args.max_keypoints)
    print(f"wrote {path}")
    if args.check:
        check = check_onnx(path, model, args.check)
        print(
            f"onnxruntime vs PyTorch on {args.check}: {check.keypoints} keypoints, {100 * check.shared:.2f}% at the same "
            f"positions (the rest tie in score: max sorted-score difference {check.max_score_error:.1e}), "
            f"max keypoint difference {check.max_keypoint_error:.2e} px, max descriptor difference {check.max_descriptor_error:.2e}"
        )


def _print_validation(scores: dict[str, float]) -> None:
    """Print a training run's last validation scores."""
    print("final validation: " + " ".join(f"{k}={v:.4f}" for k, v in scores.items()))


def _benchmark_scores(path: Path | None) -> dict[str, Any] | None:
    """The scores in a ship command's ``--benchmark`` JSON file (``None`` without one); an error names the file."""
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CorruptFileError(f"--benchmark {path}: not a readable JSON file ({error})") from error


def cmd_train_clidd(args: argparse.Namespace) -> None:
    from .train.clidd import train_clidd

    scores = train_clidd(
        args.size, args.photos, args.out or Path(f"runs/clidd_{args.size.lower()}"), targets=args.targets,
        pairs=args.pairs, steps=args.steps,
        batch_size=args.batch_size, crop=args.crop, learning_rate=args.lr, device=args.device,
        workers=args.workers, seed=args.seed, validate_every=args.validate_every, rotation=args.rotation,
    )
    _print_validation(scores)


def _export_eloftr(args: argparse.Namespace) -> None:
    from .export import check_onnx_pair, export_eloftr
    from .matchers.eloftr import EfficientLoFTR

    model = EfficientLoFTR.from_pretrained(args.config, args.weights)
    path = export_eloftr(args.output, model=model, image_size=(args.height, args.width), optimized=args.optimized)
    print(f"wrote {path}")
    if args.check_pair:
        check = check_onnx_pair(path, model, *args.check_pair, optimized=args.optimized)
        print(
            f"onnxruntime vs PyTorch on {args.check_pair[0]} / {args.check_pair[1]}: {check.matches} vs "
            f"{check.reference_matches} matches, {100 * check.shared:.2f}% with the same image-0 pixel, max image-1 "
            f"difference {check.max_keypoint_error:.2e} px, max confidence difference {check.max_confidence_error:.1e}"
        )


def cmd_train_eloftr(args: argparse.Namespace) -> None:
    from .train.eloftr import train_eloftr

    scores = train_eloftr(
        args.photos, args.out or Path(f"runs/eloftr_{args.config}"), config=args.config, steps=args.steps,
        batch_size=args.batch_size, crop=args.crop, learning_rate=args.lr, rotation=args.rotation,
        perspective=args.perspective, scale=tuple(args.scale), validation_pairs=args.validation_pairs, device=args.device,
        workers=args.workers, seed=args.seed, validate_every=args.validate_every, minutes=args.minutes,
    )
    _print_validation(scores)


def cmd_train_ship_eloftr(args: argparse.Namespace) -> None:
    from .train.eloftr import ship

    benchmark = _benchmark_scores(args.benchmark)
    print(f"wrote {ship(args.run, args.config, benchmark)}")


def cmd_train_ship(args: argparse.Namespace) -> None:
    from .train.clidd import ship

    benchmark = _benchmark_scores(args.benchmark)
    print(f"wrote {ship(args.run, args.size, benchmark)}")


def cmd_train_raco(args: argparse.Namespace) -> None:
    from .train.raco import train_raco

    scores = train_raco(
        args.stage, args.photos, args.out or Path(f"runs/raco_{args.stage}"), steps=args.steps,
        batch_size=args.batch_size, crop=args.crop, learning_rate=args.lr, detector=args.detector,
        device=args.device, workers=args.workers, seed=args.seed, validate_every=args.validate_every,
    )
    _print_validation(scores)


def cmd_train_ship_raco(args: argparse.Namespace) -> None:
    from .train.raco import ship_raco

    benchmark = _benchmark_scores(args.benchmark)
    print(f"wrote {ship_raco(args.run, args.stage, benchmark)}")


def cmd_bench_raco(args: argparse.Namespace) -> None:
    from .bench.raco import run_raco_benchmark

    for path in run_raco_benchmark(args.output, root=args.root, photos=args.photos, reports=args.reports):
        print(f"wrote {path}")
    print((args.output / "table.txt").read_text())


def cmd_bench_solvers(args: argparse.Namespace) -> None:
    from .bench.solvers import SweepConfig, run_solver_benchmark

    sweep = SweepConfig(trials=args.trials, models=tuple(args.models))
    for path in run_solver_benchmark(
        args.output, datasets=tuple(args.dataset), method=args.method, root=args.root, sweep=sweep,
        synthetic=not args.no_synthetic, progress=not args.quiet,
    ):  # fmt: skip
        print(f"wrote {path}")
    print((args.output / "table.txt").read_text())

# --- collections of images: pairs, matching, verification, COLMAP, reconstruction ---------------------------


def _backend(args: argparse.Namespace) -> Any:
    from .pipeline.backends import get_backend

    return get_backend(args.backend, args.address, args.workers)


def _camera_options(args: argparse.Namespace) -> Any:
    from .io.colmap import CameraOptions

    params = None
    if args.camera_params:
        try:
            params = tuple(float(v) for v in args.camera_params.split(","))
        except ValueError:
            raise TiepointError(f"--camera-params expects comma-separated numbers, got {args.camera_params!r}") from None
    return CameraOptions(args.camera_model, params, single=args.single_camera, refine=not args.fix_intrinsics)


def _verification_options(args: argparse.Namespace) -> Any:
    from .pipeline.verify import VerificationOptions

    return VerificationOptions(max_error=args.max_error, min_inlier_ratio=args.min_inlier_ratio)


def _print_pair_summary(summary: Any) -> int:
    """Print a pair stage's summary; returns the exit status (:data:`INCOMPLETE` when pairs failed)."""
    print(summary)
    for (name0, name1), reason in summary.failed[:5]:
        print(f"  failed: {name0} {name1}: {reason}")
    if summary.failed:
        print("  run the same command again to compute the failed pairs")
    return INCOMPLETE if summary.failed else 0


def cmd_pairs(args: argparse.Namespace) -> None:
    from .pipeline.pairs import make_pairs

    pairs = make_pairs(args.features, args.output, args.pairs, overwrite=args.overwrite)
    print(f"{args.output}: {len(pairs)} pairs")


def cmd_match_pairs(args: argparse.Namespace) -> int:
    from .pipeline.matching import match_pairs
    from .pipeline.pairs import read_pairs

    with _backend(args) as backend:
        summary = match_pairs(read_pairs(args.pairs), args.features, args.output, method=args.method,
                              backend=backend, overwrite=args.overwrite, **parse_options(args.option))
    return _print_pair_summary(summary)


def cmd_match_dense(args: argparse.Namespace) -> int:
    from .pipeline.dense import match_dense
    from .pipeline.pairs import read_pairs

    with _backend(args) as backend:
        summary = match_dense(read_pairs(args.pairs), args.images, args.output, method=args.method, backend=backend,
                              overwrite=args.overwrite, **parse_options(args.option))
    return _print_pair_summary(summary)


def cmd_merge_dense(args: argparse.Namespace) -> None:
    from .pipeline.dense import merge_dense
    from .pipeline.pairs import read_pairs

    totals = merge_dense(read_pairs(args.pairs), args.dense, args.features, args.matches, cell=args.cell)
    print(f"{args.features}, {args.matches}: {totals['images']} images, {totals['keypoints']} keypoints, "
          f"{totals['matches']} matches")


def cmd_verify(args: argparse.Namespace) -> int:
    from .pipeline.pairs import read_pairs
    from .pipeline.verify import verify_pairs

    with _backend(args) as backend:
        summary = verify_pairs(read_pairs(args.pairs), args.features, args.matches, args.output,
                               camera=_camera_options(args), options=_verification_options(args),
                               backend=backend, overwrite=args.overwrite)
    return _print_pair_summary(summary)


def cmd_colmap_import(args: argparse.Namespace) -> None:
    from .io.colmap import write_database
    from .pipeline.pairs import read_pairs

    summary = write_database(args.output, args.features, args.matches, read_pairs(args.pairs),
                             geometries=args.geometries, camera=_camera_options(args))
    print(f"{args.output}: {len(summary.image_ids)} images, {summary.num_cameras} cameras, "
          f"{summary.num_matched_pairs} matched pairs, {summary.num_verified_pairs} verified")


def cmd_map(args: argparse.Namespace) -> None:
    from .pipeline.reconstruct import map_database

    summary = map_database(args.database, args.images, args.output, _camera_options(args))
    print(f"registered {summary['registered_images']} of {summary['num_images']} images -> {args.output}")


def cmd_reconstruct(args: argparse.Namespace) -> None:
    from .pipeline.reconstruct import reconstruct

    result = reconstruct(
        args.images, args.output, method=args.method, pairs=args.pairs, backend=args.backend, address=args.address,
        num_workers=args.workers, camera=_camera_options(args), verification=_verification_options(args),
        max_keypoints=args.max_keypoints, progress=not args.quiet, **parse_options(args.option),
    )
    print(result.report())


def cmd_bench_reconstruction(args: argparse.Namespace) -> None:
    from .bench.datasets import data_roots
    from .bench.reconstruction import scaling_benchmark, temple_benchmark

    def located(given: Path | None, relative: str, option: str) -> Path:
        found = given or next((r / relative for r in data_roots() if (r / relative).is_dir()), None)
        if found is None:
            raise TiepointError(f"{relative} not found under {', '.join(map(str, data_roots()))}: pass {option}")
        return found

    if "temple" in args.run:
        root = located(args.root, "middlebury/templeSparseRing", "--root")
        results = temple_benchmark(root, args.output, args.work / "temple", method=args.method, variants=args.variants)
        for name, entry in results["variants"].items():
            errors = entry.get("errors", {})
            print(f"{name}: registered {entry['registered_images']}/{entry['num_images']}, rotation error "
                  f"median {errors.get('rotation_error_deg', {}).get('median', float('nan')):.3f} deg, centre error median "
                  f"{errors.get('centre_error_percent', {}).get('median', float('nan')):.3f}% of the ring radius; "
                  f"times {entry['timings_s']}")
        if "retrieval" in results:
            print(f"retrieval precision: {results['retrieval']}")
    if "scaling" in args.run:
        images = located(args.scaling_images, "oxford_affine", "--scaling-images")
        results = scaling_benchmark(images, args.output, args.work / "scaling", method=args.method)
        for name, run in results["runs"].items():
            print(f"{name}: {run['images_per_s']} images/s, {run['pairs_per_s']} pairs/s")


def _add_backend_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="local", choices=["local", "ray"], help="where the work runs (default local)")
    p.add_argument("--address", help="Ray cluster address (e.g. auto, ray://head:10001); default: start a local Ray")
    p.add_argument("--workers", type=int, help="CPUs of a local Ray instance (default: all)")


def _add_verification_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-error", type=float, default=4.0, help="RANSAC threshold of the verification in pixels")
    p.add_argument("--min-inlier-ratio", type=float, default=0.25,
                   help="pairs with fewer inliers than this fraction of their matches fail the verification (default "
                        "0.25, as GLOMAP; 0 keeps COLMAP's test alone)")


def _add_camera_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--camera-model", default="SIMPLE_RADIAL",
                   help="COLMAP camera model: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL (default), RADIAL, OPENCV")
    p.add_argument("--camera-params", help="known intrinsics in the model's order, comma-separated, principal point "
                   "with the top-left pixel centre at (0,0), e.g. PINHOLE 1520.4,1525.9,302.32,246.87")
    p.add_argument("--single-camera", action="store_true", help="one camera shared by all images")
    p.add_argument("--fix-intrinsics", action="store_true", help="keep the given intrinsics fixed in bundle adjustment")


def _add_pair_files(p: argparse.ArgumentParser, output_help: str) -> None:
    p.add_argument("features", type=Path, help="the HDF5 feature file")
    p.add_argument("pairs", type=Path, help="a pairs file (tiepoint pairs, or hloc's)")
    p.add_argument("matches", type=Path, help="the HDF5 match file")
    p.add_argument("output", type=Path, help=output_help)


def _add_pipeline_commands(commands: Any, add_method_arguments: Any) -> None:
    from .api import RECONSTRUCTION_METHOD

    p = commands.add_parser("reconstruct", help="images -> features, pairs, matches, verification, COLMAP model")
    p.add_argument("images", type=Path, help="a folder of images or a text file listing image paths")
    p.add_argument("output", type=Path, help="folder for features.h5, pairs.txt, matches.h5, geometries.h5, "
                   "database.db, sparse/, summary.json, reconstruction.png, and dense_matches.h5 with a dense method "
                   "(resumed if it exists)")
    add_method_arguments(p, default=RECONSTRUCTION_METHOD)
    p.add_argument("--pairs", default="exhaustive", help="exhaustive (default), sequential:K, retrieval:K or a pairs file")
    _add_verification_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_backend_arguments(p)
    _add_camera_arguments(p)
    p.set_defaults(func=cmd_reconstruct)

    p = commands.add_parser("pairs", help="choose image pairs to match from a feature file")
    p.add_argument("features", type=Path)
    p.add_argument("output", type=Path, help="the pairs file (reused if it exists)")
    p.add_argument("--pairs", default="exhaustive", help="exhaustive (default), sequential:K, retrieval:K or a pairs file")
    p.add_argument("--overwrite", action="store_true", help="choose again even if OUTPUT exists")
    p.set_defaults(func=cmd_pairs)

    p = commands.add_parser("match-pairs", help="match the pairs of a pairs file into an HDF5 match file (resumable)")
    p.add_argument("features", type=Path)
    p.add_argument("pairs", type=Path, help="a pairs file (tiepoint pairs, or hloc's)")
    p.add_argument("output", type=Path, help="the HDF5 match file (resumed if it exists)")
    p.add_argument("--method", default=RECONSTRUCTION_METHOD, help="a sparse method whose extractor made FEATURES")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a matcher option, e.g. ratio=0.9")
    p.add_argument("--overwrite", action="store_true", help="match again pairs already in the file")
    _add_backend_arguments(p)
    p.set_defaults(func=cmd_match_pairs)

    p = commands.add_parser("match-dense", help="match pairs from their images with a dense method (eloftr), or any method "
                                                "with a view search (rotations=...) (resumable)")
    p.add_argument("images", type=Path, help="the image folder the pair names are relative to")
    p.add_argument("pairs", type=Path, help="a pairs file")
    p.add_argument("output", type=Path, help="the HDF5 dense match file (resumed if it exists); then merge-dense")
    p.add_argument("--method", default="eloftr", help="a dense method (see tiepoint methods), or a sparse one with "
                                                     "--option rotations=... or zooms=... or align=...")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="a method option, e.g. threshold=0.001")
    p.add_argument("--overwrite", action="store_true", help="match again pairs already in the file")
    _add_backend_arguments(p)
    p.set_defaults(func=cmd_match_dense)

    p = commands.add_parser("merge-dense", help="dense matches -> a feature file and a match file (keypoints per image)")
    p.add_argument("pairs", type=Path, help="the pairs file given to match-dense")
    p.add_argument("dense", type=Path, help="the dense match file of match-dense")
    p.add_argument("features", type=Path, help="the feature file to write (replaced)")
    p.add_argument("matches", type=Path, help="the match file to write (replaced)")
    p.add_argument("--cell", type=float, default=1.0, help="points of an image within this grid square (pixels) merge")
    p.set_defaults(func=cmd_merge_dense)

    p = commands.add_parser("verify", help="verify matches geometrically into a two-view geometry file (resumable)")
    _add_pair_files(p, "the HDF5 geometry file (resumed if it exists)")
    _add_verification_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="verify again pairs already in the file")
    _add_backend_arguments(p)
    _add_camera_arguments(p)
    p.set_defaults(func=cmd_verify)

    p = commands.add_parser("colmap-import", help="write a COLMAP database from feature, match and geometry files")
    _add_pair_files(p, "the COLMAP database (.db), replaced")
    p.add_argument("--geometries", type=Path, help="the geometry file of `tiepoint verify` (else raw matches only)")
    _add_camera_arguments(p)
    p.set_defaults(func=cmd_colmap_import)

    p = commands.add_parser("map", help="COLMAP incremental mapping of a database into OUTPUT/sparse")
    p.add_argument("database", type=Path)
    p.add_argument("images", type=Path, help="the image folder the database's image names are relative to")
    p.add_argument("output", type=Path, help="folder for sparse/, summary.json and reconstruction.png")
    _add_camera_arguments(p)
    p.set_defaults(func=cmd_map)

    p = commands.add_parser("bench-reconstruction", help="temple ring vs ground truth, and Ray scaling")
    p.add_argument("--root", type=Path, help="the templeSparseRing folder (default: found under ../shared/data)")
    p.add_argument("--output", type=Path, default=Path("benchmarks/reconstruction"), help="folder for the results")
    p.add_argument("--work", type=Path, default=Path("outputs/bench-reconstruction"), help="folder for the runs")
    p.add_argument("--method", default=RECONSTRUCTION_METHOD)
    p.add_argument("--scaling-images", type=Path, help="images for the scaling run (default: the Oxford affine set)")
    p.add_argument("--run", nargs="+", default=["temple", "scaling"], choices=["temple", "scaling"])
    p.add_argument("--variants", nargs="+", metavar="VARIANT",
                   help="temple variants to run (default: all; names in tiepoint.bench.reconstruction.TEMPLE_VARIANTS, "
                        "e.g. exhaustive retrieval-5)")
    p.set_defaults(func=cmd_bench_reconstruction)


def cmd_train_upsampler(args: argparse.Namespace) -> None:
    from .train.upsampler import train_upsampler

    scores = train_upsampler(
        args.backbone, args.method, args.photos, args.out, cache=args.cache, crops=args.crops, side=args.side,
        steps=args.steps, stage2_steps=args.stage2_steps, batch_size=args.batch_size, learning_rate=args.lr,
        seed=args.seed, validate_every=args.validate_every, layer=args.layer,
    )
    _print_validation(scores)


def cmd_ship_upsampler(args: argparse.Namespace) -> None:
    from .train.upsampler import ship_upsampler

    benchmark = _benchmark_scores(args.benchmark)
    print(f"wrote {ship_upsampler(args.run, args.backbone, args.method, benchmark)}")


def cmd_bench_upsamplers(args: argparse.Namespace) -> None:
    from .bench.upsamplers import format_upsampler_table, run_upsampler_benchmark

    path = run_upsampler_benchmark(args.output, args.backbones, args.methods, args.photos, args.root, args.parts)
    print(format_upsampler_table(json.loads(path.read_text())))
    print(f"wrote {path}")


def _add_upsampler_commands(commands: Any, train_commands: Any) -> None:
    p = commands.add_parser("bench-upsamplers", help="feature upsamplers: consistency, correspondence, time and memory")
    p.add_argument("--output", type=Path, default=Path("benchmarks/upsamplers"), help="folder for the results")
    p.add_argument("--backbones", nargs="+", default=["dinov2s", "effl0"], choices=("dinov2s", "effl0"))
    p.add_argument("--methods", nargs="+", default=["bilinear", "bicubic", "jbu", "loftup", "featsharp"])
    p.add_argument("--parts", nargs="+", default=["consistency", "cost", "correspondence"])
    p.add_argument("--photos", type=Path, default=Path("data/photos"), help="corpus (its val split is used)")
    p.add_argument("--root", type=Path, help="folder holding the datasets (default: ../shared/data)")
    p.set_defaults(func=cmd_bench_upsamplers)
    p = train_commands.add_parser("upsampler", help="train a feature upsampler (jbu, loftup, featsharp) on a frozen backbone")
    p.add_argument("--backbone", required=True, choices=("dinov2s", "effl0"))
    p.add_argument("--method", required=True, choices=("jbu", "loftup", "featsharp"))
    p.add_argument("--photos", type=Path, default=Path("data/photos"), help="corpus from 'tiepoint data photos'")
    p.add_argument("--layer", type=int, help="dinov2s only: transformer layer 1..12 (default 9)")
    p.add_argument("--out", type=Path, help="run folder (default: runs/upsampler/<backbone>[-l<layer>]-<method>)")
    p.add_argument("--cache", type=Path, help="feature cache (default: runs/upsampler-cache/<backbone>[-l<layer>]-<side>)")
    p.add_argument("--crops", type=int, default=2, help="cached crops per photo")
    p.add_argument("--side", type=int, default=224, help="crop side in pixels (a multiple of the stride)")
    p.add_argument("--steps", type=int, default=600, help="steps (LoftUp: stage 1)")
    p.add_argument("--stage2-steps", type=int, default=300, help="LoftUp self-distillation steps")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--validate-every", type=int, default=100)
    p.set_defaults(func=cmd_train_upsampler)
    p = train_commands.add_parser("ship-upsampler", help="copy an upsampler run's weights into the package with their record")
    p.add_argument("run", type=Path, help="the run folder")
    p.add_argument("--backbone", required=True, choices=("dinov2s", "effl0"))
    p.add_argument("--method", required=True, choices=("jbu", "loftup", "featsharp"))
    p.add_argument("--benchmark", type=Path, help="a JSON file of benchmark scores to record with the weights")
    p.set_defaults(func=cmd_ship_upsampler)


def build_parser() -> argparse.ArgumentParser:
    from .api import DEFAULT_METHOD, RECONSTRUCTION_METHOD

    parser = argparse.ArgumentParser(
        prog="tiepoint", description="Tie points between images, turned into geometry.",
        epilog="exit status: 0 done; 1 some images or pairs failed (extract, match-pairs, match-dense, verify; "
               "reconstruct when a stage failed: the finished ones are saved, run again to retry the rest); 2 bad "
               "input; 130 interrupted",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_method_arguments(p: argparse.ArgumentParser, default: str = DEFAULT_METHOD) -> None:
        p.add_argument("--method", default=default, help=f"method name (default {default}; see `tiepoint methods`)")
        p.add_argument("--max-keypoints", type=int, help="keypoint budget per image")
        p.add_argument("--option", action="append", metavar="KEY=VALUE",
                       help="a method option, e.g. ratio=0.9; \"rotations=(0,90,180,270)\" matches image 1 at each "
                            "right-angle turn and \"zooms=(1,0.5,2)\" at each relative scale, keeping the best view; "
                            "accept=0.5 stops at the first view with that inlier ratio; align=True matches once more with image 1 "
                            "warped onto image 0 by the best view's homography and refines the matches (kept unless they "
                            "show parallax, a 3D scene); align=ratio does so with the ratio test (repeatable)")

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
    add_method_arguments(p, default=RECONSTRUCTION_METHOD)
    p.add_argument("--image-root", type=Path, help="image names are stored relative to this folder")
    p.add_argument("--overwrite", action="store_true", help="re-extract images already in the file")
    p.add_argument("--half", action="store_true", help="store float descriptors as float16")
    _add_backend_arguments(p)
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

    p = commands.add_parser("export", help="export a CLIDD extractor to ONNX (and check it with onnxruntime)")
    p.add_argument("output", type=Path, help="the .onnx file to write")
    p.add_argument("--size", default="A48", help="the CLIDD size (shipped weights)")
    p.add_argument("--weights", type=Path, help="a weights file instead of the shipped one")
    p.add_argument("--height", type=int, default=480, help="input height of the graph")
    p.add_argument("--width", type=int, default=640, help="input width of the graph")
    p.add_argument("--max-keypoints", type=int, default=2048, help="keypoints the graph returns")
    p.add_argument("--check", type=Path, metavar="IMAGE", help="compare onnxruntime with PyTorch on this image")
    p.add_argument("--model", choices=("clidd", "eloftr"), default="clidd", help="what to export (default: clidd)")
    p.add_argument("--config", default="small", help="eloftr: the config (shipped weights)")
    p.add_argument("--optimized", action="store_true", help="eloftr: the optimized mode (no dual-softmax), as eloftr-opt")
    p.add_argument("--check-pair", type=Path, nargs=2, metavar=("IMAGE0", "IMAGE1"),
                   help="eloftr: compare onnxruntime with PyTorch on this pair")
    p.set_defaults(func=cmd_export)

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
    p.add_argument("--rotation", type=float, default=180.0,
                   help="largest in-plane rotation of the pairs, degrees (default 180; below it, targets go to "
                        "runs/targets/aliked-n32-CROP-rotDEG)")
    p.set_defaults(func=cmd_train_clidd)
    p = train_commands.add_parser("eloftr", help="train Efficient LoFTR from scratch on homography pairs")
    p.add_argument("--config", default="small", help="small (trains on a CPU) or full (the paper's size)")
    p.add_argument("--photos", type=Path, default=Path("data/photos"), help="corpus from 'tiepoint data photos'")
    p.add_argument("--out", type=Path, help="run folder (default: runs/eloftr_<config>)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=2, help="image pairs per step")
    p.add_argument("--crop", type=int, default=256, help="side of the training images (a multiple of 32)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW, cosine schedule)")
    p.add_argument("--rotation", type=float, default=45.0, help="largest in-plane rotation of the pairs, degrees")
    p.add_argument("--perspective", type=float, default=0.15, help="largest corner shift of the homographies")
    p.add_argument("--scale", type=float, nargs=2, default=(0.6, 1.6), metavar=("LOW", "HIGH"),
                   help="zoom range of the second image relative to the first")
    p.add_argument("--validation-pairs", type=int, default=8, help="held-out pairs scored at each validation")
    p.add_argument("--device", default="cpu", help="cpu or cuda (bfloat16 autocast on cuda)")
    p.add_argument("--workers", type=int, default=1, help="data-loading processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--validate-every", type=int, default=250, help="steps between validations")
    p.add_argument("--minutes", type=float, help="stop with a checkpoint after this many minutes (run again to resume)")
    p.set_defaults(func=cmd_train_eloftr)
    p = train_commands.add_parser("ship-eloftr", help="copy an Efficient LoFTR run's best weights into the package")
    p.add_argument("run", type=Path, help="the run folder")
    p.add_argument("--config", default="small", help="the config the run trained")
    p.add_argument("--benchmark", type=Path, help="a JSON file of benchmark scores to record with the weights")
    p.set_defaults(func=cmd_train_ship_eloftr)
    p = train_commands.add_parser("ship", help="copy a run's best CLIDD weights into the package with their record")
    p.add_argument("run", type=Path, help="the run folder")
    p.add_argument("--size", required=True, help="the CLIDD size the run trained")
    p.add_argument("--benchmark", type=Path, help="a JSON file of benchmark scores to record with the weights")
    p.set_defaults(func=cmd_train_ship)
    p = train_commands.add_parser("raco", help="train RaCo: --stage detector (detector + covariance), then ranker")
    p.add_argument("--stage", choices=("detector", "ranker"), default="detector")
    p.add_argument("--photos", type=Path, default=Path("data/photos"), help="corpus from 'tiepoint data photos'")
    p.add_argument("--out", type=Path, help="run folder (default: runs/raco_<stage>)")
    p.add_argument("--detector", type=Path, help="ranker stage: detector weights (default: the shipped raco.pt)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=4, help="image pairs per step")
    p.add_argument("--crop", type=int, default=192, help="side of the training images in pixels")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW, cosine schedule)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--workers", type=int, default=1, help="data-loading processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--validate-every", type=int, default=250, help="steps between validations")
    p.set_defaults(func=cmd_train_raco)
    p = train_commands.add_parser("ship-raco", help="copy a RaCo run's best weights into the package with their record")
    p.add_argument("run", type=Path, help="the run folder")
    p.add_argument("--stage", choices=("detector", "ranker"), required=True)
    p.add_argument("--benchmark", type=Path, help="a JSON file of benchmark scores to record with the weights")
    p.set_defaults(func=cmd_train_ship_raco)
    p = commands.add_parser("bench-raco", help="RaCo reports: repeatability vs budget and rotation, calibration, weighting")
    p.add_argument("--output", type=Path, default=Path("benchmarks/raco"), help="folder for results, table and plots")
    p.add_argument("--root", type=Path, help="folder holding the datasets (default: ../shared/data)")
    p.add_argument("--photos", type=Path, default=Path("data/photos"), help="corpus (its val split is rotated)")
    p.add_argument("--reports", nargs="+", default=["budget", "rotation", "calibration", "estimation"],
                   choices=("budget", "rotation", "calibration", "estimation"))
    p.set_defaults(func=cmd_bench_raco)
    _add_upsampler_commands(commands, train_commands)
    _add_pipeline_commands(commands, add_method_arguments)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        status = args.func(args)
    except (TiepointError, ValueError, KeyError, OSError) as error:  # bad input, missing files, full disks
        if args.verbose:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"tiepoint {args.command}: error: {message} (run with -v for the traceback)", file=sys.stderr)
        return getattr(error, "exit_status", 2)
    except KeyboardInterrupt:
        print(f"tiepoint {args.command}: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
