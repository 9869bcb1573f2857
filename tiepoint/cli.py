"""The ``tiepoint`` command. It only parses arguments and calls library functions.

tiepoint demo                            match the bundled pair, score it against its ground truth, draw it
tiepoint methods                         list the registered methods
tiepoint match A B                       match two images, estimate geometry, write a figure and HDF5 files
tiepoint extract IMAGES F.h5             extract features of many images into a feature file (resumable)
tiepoint pairs F.h5 P.txt                choose the image pairs to match
tiepoint match-pairs F.h5 P.txt M.h5     match the pairs (resumable); --images DIR: from the images (eloftr)
tiepoint verify F.h5 P.txt M.h5 G.h5     verify the matches geometrically (resumable)
tiepoint map IMAGES OUT --features ...   write a COLMAP database from the files and map it into OUT/sparse
tiepoint reconstruct IMAGES OUT          every stage from images to a COLMAP model (resumable)
tiepoint localize OUT QUERIES --output P register new images against that model (poses in hloc's format)
tiepoint bench --dataset D --root R      benchmark methods on data with ground truth
tiepoint export OUT.onnx                 export CLIDD (or --model eloftr) to ONNX, check it with onnxruntime
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .cliutil import (
    INCOMPLETE,
    CommandTable,
    add_backend_arguments,
    add_benchmark_arguments,
    add_camera_arguments,
    add_estimator_argument,
    add_mapper_argument,
    add_method_arguments,
    add_overwrite_argument,
    add_pair_files,
    add_quiet_argument,
    add_verification_arguments,
    camera_options,
    method_options,
    print_pair_summary,
    root_parser,
    run_command,
    run_stage,
    verification_options,
)
from .config import parse_options
from .errors import OptionError

__all__ = ["INCOMPLETE", "build_parser", "main"]

PAIRS_HELP = "exhaustive (default), sequential:K, retrieval:K or a pairs file"


def cmd_demo(args: argparse.Namespace) -> None:
    """Run the bundled demo and print its scores."""
    from .demo import run_demo

    result = run_demo(method=args.method, output_dir=args.output, estimator=args.estimator)
    print(result.summary())


def cmd_methods(args: argparse.Namespace) -> None:
    """Print the registered methods, one a line."""
    from .api import DEFAULT_METHOD, RECONSTRUCTION_METHOD, methods

    listed = methods()
    width = max(len(m.name) for m in listed)
    for m in listed:
        print(f"{m.name:<{width}}  {m.kind:<6}  {m.summary}")
    print(
        f"\ndefault method: {DEFAULT_METHOD} (feature-file pipelines: {RECONSTRUCTION_METHOD}); "
        "an extractor name alone (e.g. 'sift') uses its default matcher"
    )


LARGE_IMAGE_GB_PER_MP = 0.125
"""Peak memory of ``tiepoint match`` per megapixel of the two images at full resolution, as measured: two
24 MP photos took 6 GB with SIFT (33 s) and 3.4 GB with the default method (74 s)."""


def announce_large_images(images: list[Path], method: str, options: dict[str, Any]) -> str | None:
    """The line ``tiepoint match`` prints on stderr before matching images over
    :data:`~tiepoint.io.image.LARGE_PIXELS` at full resolution (``None`` when it has nothing to say): their
    size, the time and memory to expect, and the ``resize`` option that avoids them."""
    from .io.image import LARGE_PIXELS, read_image_info

    sizes = [(path, info) for path in images if (info := read_image_info(path)) is not None]
    edge = _working_edge(method, options)
    worked = [info.pixels * _shrink(info, edge) ** 2 for _, info in sizes]  # pixels the method works on
    if not any(pixels > LARGE_PIXELS for pixels in worked):
        return None
    described = " and ".join(
        f"{path.name} is {info.width}x{info.height} ({info.pixels / 1e6:.1f} MP)" for path, info in sizes
    )
    scale = "full resolution" if edge is None else f"{edge} px on the longer side"
    memory = LARGE_IMAGE_GB_PER_MP * sum(worked) / 1e6
    return (
        f"tiepoint match: {described}; matching at {scale} may take a minute or more and up to about "
        f"{memory:.1f} GB of memory. --option resize=2048 works at 2048 px on the longer side (keypoints "
        "stay in pixels of the original images)"
    )


def _shrink(info: Any, edge: int | None) -> float:
    """The factor an image is shrunk by to fit ``edge`` pixels on its longer side (1: not shrunk)."""
    return 1.0 if edge is None else min(1.0, edge / max(info.width, info.height))


def _working_edge(method: str, options: dict[str, Any]) -> int | None:
    """The longer side a method works at (its extractor's or pair matcher's ``resize``), ``None`` for full
    resolution or when unknown. The method built here is the one matching builds (methods are cached)."""
    from . import registry

    try:
        built = registry.get_method(method, **options)
    except Exception:  # noqa: BLE001 - matching raises the same error with its message
        return None
    part = getattr(built, "method", built)  # a view search holds the method it runs
    part = getattr(part, "extractor", part)
    part = getattr(part, "extractor", part)  # a wrapper (pyramid, ranker) holds the extractor
    resize = getattr(getattr(part, "config", None), "resize", None)
    return resize if isinstance(resize, int) else None


def cmd_match(args: argparse.Namespace) -> int:
    """Match two images and print the result's summary; 1 when no reliable model was found."""
    from .pipeline.match import match_pair

    announcement = announce_large_images([args.image0, args.image1], args.method, method_options(args))
    if announcement:
        print(announcement, file=sys.stderr, flush=True)

    result = match_pair(
        args.image0,
        args.image1,
        method=args.method,
        model=None if args.model == "none" else args.model,
        estimator=args.estimator,
        threshold=args.threshold,
        output_dir=args.output,
        orientation=args.orientation,
        **method_options(args),
    )
    print(result.summary())
    return result.exit_status


def cmd_extract(args: argparse.Namespace) -> int:
    """Extract features into a feature file; :data:`INCOMPLETE` when images failed."""
    from .pipeline.extract import extract_features

    summary = run_stage(
        args,
        extract_features,
        args.images,
        args.output,
        method=args.method,
        image_root=args.image_root,
        as_half=args.half,
        **method_options(args),
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


def cmd_pairs(args: argparse.Namespace) -> None:
    """Choose the pairs to match and write the pairs file."""
    from .pipeline.pairs import make_pairs

    pairs = make_pairs(args.features, args.output, args.pairs, overwrite=args.overwrite)
    print(f"{args.output}: {len(pairs)} pairs")


def cmd_match_pairs(args: argparse.Namespace) -> int:
    """Match a pairs file: from the feature file with a sparse method, else from the images (then merged)."""
    from .pipeline.dense import matches_from_images
    from .pipeline.matching import match_pairs
    from .pipeline.pairs import read_pairs

    options = parse_options(args.option)
    pairs = read_pairs(args.pairs)
    if matches_from_images(args.method, options):
        return _match_from_images(args, pairs, options)
    if args.images is not None:
        raise OptionError(
            f"--images: method {args.method!r} is sparse and matches the features in {args.features}; "
            "only a method that matches from images (a dense one such as eloftr, or a view search) reads them"
        )
    summary = run_stage(args, match_pairs, pairs, args.features, args.matches, method=args.method, **options)
    return print_pair_summary(summary)


def _match_from_images(
    args: argparse.Namespace, pairs: list[tuple[str, str]], options: dict[str, Any]
) -> int:
    """Dense matching of each pair from its images into the dense file, then the merge of each image's points
    into the feature file and the match file (written only once every pair is matched)."""
    from .pipeline.dense import match_dense, merge_dense

    if args.images is None:
        raise OptionError(
            f"method {args.method!r} matches each pair from its images: give the image folder with --images "
            "(FEATURES is then written, with the keypoints merged per image)"
        )
    _refuse_extracted_features(args.features)
    dense = args.dense or args.matches.with_name(f"dense_{args.matches.name}")
    summary = run_stage(args, match_dense, pairs, args.images, dense, method=args.method, **options)
    status = print_pair_summary(summary)
    if status:
        print(f"  {args.features} and {args.matches} are written once every pair is matched")
        return status
    totals = merge_dense(pairs, dense, args.features, args.matches, cell=args.cell)
    print(
        f"{args.features}, {args.matches}: {totals['images']} images, {totals['keypoints']} keypoints, "
        f"{totals['matches']} matches"
    )
    return 0


def _refuse_extracted_features(path: Path) -> None:
    """Refuse to replace a feature file of extracted features (with descriptors) by merged dense keypoints."""
    from .io.h5 import list_feature_names, read_features

    if not path.is_file():
        return
    if any(read_features(path, name).descriptors.size for name in list_feature_names(path)[:3]):
        raise OptionError(
            f"{path} holds extracted features (with descriptors); a method that matches from images writes "
            "its own feature file: give another FEATURES path"
        )


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify the matches of the pairs; :data:`INCOMPLETE` when pairs failed."""
    from .pipeline.pairs import read_pairs
    from .pipeline.verify import verify_pairs

    summary = run_stage(
        args,
        verify_pairs,
        read_pairs(args.pairs),
        args.features,
        args.matches,
        args.output,
        camera=camera_options(args),
        options=verification_options(args),
    )
    return print_pair_summary(summary)


def cmd_map(args: argparse.Namespace) -> int | None:
    """Write the COLMAP database from the stage files (or take an existing one), then map it; 1 when no
    image was registered."""
    from .io.colmap import write_database
    from .pipeline.pairs import read_pairs
    from .pipeline.reconstruct import FILES, MapperOptions, map_database

    camera = camera_options(args)
    files = {"--features": args.features, "--pairs": args.pairs, "--matches": args.matches}
    if any(files.values()):
        missing = [name for name, value in files.items() if value is None]
        if missing:
            raise OptionError(f"{', '.join(missing)}: --features, --pairs and --matches are given together")
        database = args.database or args.output / FILES["database"]
        written = write_database(
            database,
            args.features,
            args.matches,
            read_pairs(args.pairs),
            geometries=args.geometries,
            camera=camera,
            image_root=args.images,
        )
        print(
            f"{database}: {len(written.image_ids)} images, {written.num_cameras} cameras, "
            f"{written.num_matched_pairs} matched pairs, {written.num_verified_pairs} verified"
        )
        if args.database_only:
            return
    elif args.database is None or args.database_only or args.geometries is not None:
        raise OptionError(
            "give --features, --pairs and --matches (and --geometries) to write the database from them, or "
            "--database DB alone to map an existing COLMAP database"
        )
    else:
        database = args.database
    summary = map_database(database, args.images, args.output, camera, MapperOptions(kind=args.mapper))
    print(f"registered {summary['registered_images']} of {summary['num_images']} images -> {args.output}")
    for record in summary.get("unregistered_images", [])[:20]:
        print(f"not registered: {record['name']}: {record['reason']}")
    for problem in summary.get("problems", []):
        print(f"{summary['status'].upper()}: {problem}")
    return 0 if summary.get("status", "complete") == "complete" else INCOMPLETE


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """Run every stage from images to a COLMAP model and print the report; 1 when images were skipped or
    nothing was registered."""
    from .pipeline.reconstruct import MapperOptions, reconstruct

    result = reconstruct(
        args.images,
        args.output,
        method=args.method,
        pairs=args.pairs,
        backend=args.backend,
        address=args.address,
        num_workers=args.workers,
        camera=camera_options(args),
        verification=verification_options(args),
        mapper=MapperOptions(kind=args.mapper),
        max_keypoints=args.max_keypoints,
        progress=not args.quiet,
        **parse_options(args.option),
    )
    print(result.report())
    return result.exit_status


def cmd_localize(args: argparse.Namespace) -> int:
    """Localize query images against a reconstruction; 1 when a query was not localized."""
    from .pipeline.backends import get_backend
    from .pipeline.localize import LocalizationOptions, localize

    options = LocalizationOptions(
        num_retrieved=args.num_retrieved, max_error=args.max_error, min_inliers=args.min_inliers
    )
    runner = get_backend(args.backend, args.address, args.workers)
    try:
        result = localize(
            args.model,
            args.queries,
            args.output,
            options,
            backend=runner,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
    finally:
        runner.close()
    print(result.report())
    return result.exit_status


def cmd_bench(args: argparse.Namespace) -> None:
    """Benchmark methods on datasets, print the table and write the report."""
    from .evaluation import format_table, run_benchmarks, write_report

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
    for path in write_report(results, args.output, append=args.append):
        print(f"wrote {path}")


def cmd_export(args: argparse.Namespace) -> None:
    """Export a CLIDD extractor (or Efficient LoFTR) to ONNX, checked against PyTorch when asked."""
    if args.model == "eloftr":
        return _export_eloftr(args)
    from .export import check_onnx, export_clidd
    from .features.clidd import CLIDDModel

    model = CLIDDModel.from_pretrained(args.size, args.weights)
    path = export_clidd(
        args.output, model=model, image_size=(args.height, args.width), max_keypoints=args.max_keypoints
    )
    print(f"wrote {path}")
    if args.check:
        check = check_onnx(path, model, args.check)
        print(
            f"onnxruntime vs PyTorch on {args.check}: {check.keypoints} keypoints, "
            f"{100 * check.shared:.2f}% at the same positions (the rest tie in score: max sorted-score "
            f"difference {check.max_score_error:.1e}), max keypoint difference "
            f"{check.max_keypoint_error:.2e} px, max descriptor difference {check.max_descriptor_error:.2e}"
        )


def _export_eloftr(args: argparse.Namespace) -> None:
    """Export Efficient LoFTR to ONNX, checked on a pair when asked."""
    from .export import check_onnx_pair, export_eloftr
    from .matchers.eloftr import EfficientLoFTR

    model = EfficientLoFTR.from_pretrained(args.config, args.weights)
    path = export_eloftr(
        args.output, model=model, image_size=(args.height, args.width), optimized=args.optimized
    )
    print(f"wrote {path}")
    if args.check_pair:
        check = check_onnx_pair(path, model, *args.check_pair, optimized=args.optimized)
        print(
            f"onnxruntime vs PyTorch on {args.check_pair[0]} / {args.check_pair[1]}: {check.matches} vs "
            f"{check.reference_matches} matches, {100 * check.shared:.2f}% with the same image-0 pixel, max "
            f"image-1 difference {check.max_keypoint_error:.2e} px, max confidence difference "
            f"{check.max_confidence_error:.1e}"
        )


def build_parser() -> argparse.ArgumentParser:
    """The ``tiepoint`` parser: one command per thing a user does (see the module docstring)."""
    from .api import DEFAULT_METHOD, RECONSTRUCTION_METHOD

    parser = root_parser(
        "tiepoint",
        "Tie points between images, turned into geometry.",
        epilog="exit status: 0 done; 1 a result that is not complete or not reliable: some images or pairs "
        "failed (extract, match-pairs, verify, reconstruct: the finished ones are saved, run again to retry "
        "the rest), no reliable model (match), images skipped, nothing registered or implausible cameras "
        "(reconstruct, map); 2 bad input or another error (one line; -v shows the traceback); 130 "
        "interrupted; 141 the output pipe closed (e.g. | head)",
    )
    commands = CommandTable(parser)

    p = commands.add("demo", "match the bundled stereo pair and score it against its ground truth", cmd_demo)
    p.add_argument("--method", default=DEFAULT_METHOD, help=f"method name (default {DEFAULT_METHOD})")
    add_estimator_argument(p)
    p.add_argument("--output", type=Path, default=Path("outputs/demo"), help="folder for the figure")

    commands.add("methods", "list the registered methods", cmd_methods)

    p = commands.add("match", "match two images, estimate geometry, write figure and files", cmd_match)
    p.add_argument("image0", type=Path)
    p.add_argument("image1", type=Path)
    add_method_arguments(p, DEFAULT_METHOD)
    p.add_argument(
        "--model",
        default="homography",
        choices=["homography", "fundamental", "none"],
        help="geometry to estimate (relative pose needs intrinsics: use the Python API)",
    )
    add_estimator_argument(p)
    p.add_argument("--threshold", type=float, help="inlier threshold in pixels (default per model)")
    p.add_argument(
        "--orientation",
        choices=["stored", "exif"],
        default="stored",
        help="read pixels as stored (default, as COLMAP does) or turned upright by the EXIF orientation tag",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=Path("outputs/match"),
        help="folder for matches.png, features.h5, matches.h5 and summary.json",
    )

    p = commands.add(
        "extract", "extract features of a folder or list of images into HDF5 (resumable)", cmd_extract
    )
    p.add_argument("images", type=Path, help="a folder of images or a text file listing image paths")
    p.add_argument("output", type=Path, help="the HDF5 feature file (resumed if it exists)")
    add_method_arguments(p, RECONSTRUCTION_METHOD)
    p.add_argument("--image-root", type=Path, help="image names are stored relative to this folder")
    add_overwrite_argument(p, "re-extract images already in the file")
    p.add_argument("--half", action="store_true", help="store float descriptors as float16")
    add_backend_arguments(p)

    p = commands.add("pairs", "choose image pairs to match from a feature file", cmd_pairs)
    p.add_argument("features", type=Path)
    p.add_argument("output", type=Path, help="the pairs file (reused if it exists)")
    p.add_argument("--pairs", default="exhaustive", help=PAIRS_HELP)
    add_overwrite_argument(p, "choose again even if OUTPUT exists")

    p = commands.add(
        "match-pairs",
        "match the pairs of a pairs file into an HDF5 match file (resumable)",
        cmd_match_pairs,
        description="Match the pairs of a pairs file into an HDF5 match file (resumable). A sparse method "
        "matches the features of FEATURES. A method that matches each pair from its images (a dense one "
        "such as eloftr, or a sparse one with a view search: --option rotations=..., zooms=..., align=...) "
        "needs --images: it stores each pair's matches in the --dense file (resumable), then merges them "
        "into FEATURES (keypoints pooled per image) and MATCHES, for verify and map.",
    )
    p.add_argument(
        "features",
        type=Path,
        help="the HDF5 feature file: read, or with --images written (keypoints merged per image)",
    )
    p.add_argument("pairs", type=Path, help="a pairs file (tiepoint pairs, or hloc's)")
    p.add_argument(
        "matches", type=Path, help="the HDF5 match file (resumed if it exists; replaced with --images)"
    )
    add_method_arguments(
        p,
        RECONSTRUCTION_METHOD,
        keypoints=False,
        help=f"a sparse method whose extractor made FEATURES (default {RECONSTRUCTION_METHOD}), or a dense "
        "one (eloftr), or a sparse one with a view search (--option rotations=..., zooms=..., align=...); "
        "see `tiepoint methods`",
    )
    p.add_argument(
        "--images", type=Path, help="the image folder the pair names are relative to (dense methods)"
    )
    p.add_argument(
        "--dense",
        type=Path,
        help="with --images: the file of each pair's dense matches (resumed if it exists; default: "
        "dense_MATCHES beside MATCHES)",
    )
    p.add_argument(
        "--cell",
        type=float,
        default=1.0,
        help="with --images: points of an image within this grid square (pixels) merge into one keypoint",
    )
    add_overwrite_argument(p, "match again pairs already in the file")
    add_backend_arguments(p)

    p = commands.add(
        "verify", "verify matches geometrically into a two-view geometry file (resumable)", cmd_verify
    )
    add_pair_files(p)
    p.add_argument("output", type=Path, help="the HDF5 geometry file (resumed if it exists)")
    add_verification_arguments(p)
    add_overwrite_argument(p, "verify again pairs already in the file")
    add_backend_arguments(p)
    add_camera_arguments(p)

    p = commands.add(
        "map",
        "write a COLMAP database from feature, match and geometry files and map it into OUTPUT/sparse",
        cmd_map,
        description="Write a COLMAP database (OUTPUT/database.db, or --database) from the files of the "
        "stages (--features, --pairs, --matches, and --geometries from verify), then map it with COLMAP's "
        "incremental mapper into OUTPUT/sparse, with OUTPUT/summary.json and OUTPUT/reconstruction.png. "
        "--database-only stops after the database; --database DB alone maps an existing COLMAP database.",
    )
    p.add_argument("images", type=Path, help="the image folder the image names are relative to")
    p.add_argument(
        "output", type=Path, help="folder for database.db, sparse/, summary.json and reconstruction.png"
    )
    p.add_argument("--features", type=Path, help="the HDF5 feature file")
    p.add_argument("--pairs", type=Path, help="the pairs file")
    p.add_argument("--matches", type=Path, help="the HDF5 match file")
    p.add_argument(
        "--geometries", type=Path, help="the geometry file of `tiepoint verify` (else raw matches only)"
    )
    p.add_argument(
        "--database",
        type=Path,
        help="the COLMAP database to write (default OUTPUT/database.db); alone, an existing database to map",
    )
    p.add_argument("--database-only", action="store_true", help="write the database, do not map")
    add_camera_arguments(p)
    add_mapper_argument(p)

    p = commands.add(
        "reconstruct",
        "images -> features, pairs, matches, verification, COLMAP model (resumable)",
        cmd_reconstruct,
    )
    p.add_argument("images", type=Path, help="a folder of images or a text file listing image paths")
    p.add_argument(
        "output",
        type=Path,
        help="folder for features.h5, pairs.txt, matches.h5, geometries.h5, database.db, sparse/, "
        "summary.json, reconstruction.png, and dense_matches.h5 with a dense method (resumed if it exists)",
    )
    add_method_arguments(p, RECONSTRUCTION_METHOD)
    p.add_argument("--pairs", default="exhaustive", help=PAIRS_HELP)
    add_verification_arguments(p)
    add_quiet_argument(p)
    add_backend_arguments(p)
    add_camera_arguments(p)
    add_mapper_argument(p)

    p = commands.add(
        "localize",
        "register new images against a model made by reconstruct (poses in hloc's format)",
        cmd_localize,
        description="Register query images against a model made by `tiepoint reconstruct`: each query is "
        "matched with the model's method against its most similar model images (VLAD retrieval), its "
        "matches become 2D-3D correspondences through the model's tracks, and pycolmap's LO-RANSAC finds its "
        "pose with its camera (EXIF focal length; else the model's camera of the same size; else the focal "
        "length is estimated). Writes OUTPUT (one line 'name qw qx qy qz tx ty tz' per localized query, "
        "world-to-camera), OUTPUT.log.json (every query: inliers, or why it failed) and "
        "OUTPUT.features.h5; resumable. Exit status 1 when a query was not localized.",
    )
    p.add_argument("model", type=Path, help="the output folder of tiepoint reconstruct")
    p.add_argument("queries", type=Path, help="a folder of query images, an image list or an image")
    p.add_argument("--output", type=Path, required=True, help="the poses file (e.g. poses.txt)")
    p.add_argument(
        "--num-retrieved", type=int, default=10, help="model images each query is matched with (default 10)"
    )
    p.add_argument(
        "--max-error", type=float, default=12.0, help="RANSAC inlier threshold in pixels (default 12)"
    )
    p.add_argument(
        "--min-inliers", type=int, default=30, help="fewest pose inliers to accept a pose (default 30)"
    )
    add_overwrite_argument(p, "localize again the queries an earlier run logged")
    add_quiet_argument(p)
    add_backend_arguments(p)

    p = commands.add("bench", "benchmark methods on datasets with ground truth", cmd_bench)
    add_benchmark_arguments(
        p,
        DEFAULT_METHOD,
        output=Path("bench_out"),
        root_help="dataset folder, or a folder holding it (default: the folders in $TIEPOINT_DATA)",
    )

    p = commands.add("export", "export a CLIDD extractor to ONNX (and check it with onnxruntime)", cmd_export)
    p.add_argument("output", type=Path, help="the .onnx file to write")
    p.add_argument("--size", default="A48", help="the CLIDD size (shipped weights)")
    p.add_argument("--weights", type=Path, help="a weights file instead of the shipped one")
    p.add_argument("--height", type=int, default=480, help="input height of the graph")
    p.add_argument("--width", type=int, default=640, help="input width of the graph")
    p.add_argument("--max-keypoints", type=int, default=2048, help="keypoints the graph returns")
    p.add_argument(
        "--check", type=Path, metavar="IMAGE", help="compare onnxruntime with PyTorch on this image"
    )
    p.add_argument(
        "--model", choices=("clidd", "eloftr"), default="clidd", help="what to export (default: clidd)"
    )
    p.add_argument("--config", default="small", help="eloftr: the config (shipped weights)")
    p.add_argument(
        "--optimized", action="store_true", help="eloftr: the optimized mode (no dual-softmax), as eloftr-opt"
    )
    p.add_argument(
        "--check-pair",
        type=Path,
        nargs=2,
        metavar=("IMAGE0", "IMAGE1"),
        help="eloftr: compare onnxruntime with PyTorch on this pair",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``tiepoint`` with ``argv`` (default: the command line); returns the exit status."""
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
