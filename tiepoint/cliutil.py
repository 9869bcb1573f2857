"""Building blocks of tiepoint's command lines: commands with a ``-v`` that works anywhere, the argument
groups that several commands share (each declared once here), the objects built from them, and the error
handling of ``main``. The ``tiepoint`` command (:mod:`tiepoint.cli`) is built from them; other command lines
may reuse them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import parse_options
from .errors import TiepointError

INCOMPLETE = 1
"""Exit status of a batch stage (extract, match-pairs, verify) some of whose images or pairs failed: the
finished ones are saved, and running the same command again retries the rest. Scripts (``set -e``) stop
there."""

Command = Callable[[argparse.Namespace], "int | None"]
"""A command function: it gets the parsed arguments and returns an exit status (``None`` for 0)."""

METHOD_OPTION_HELP = (
    "a method option, [PART.]NAME=VALUE with PART extractor, matcher or search (needed only when two parts "
    'declare NAME), e.g. matcher.ratio=0.9; "search.rotations=(0,90,180,270)" matches image 1 at each '
    'right-angle turn and "search.zooms=(1,0.5,2)" at each relative scale, keeping the best view; '
    "search.accept=0.5 stops at the first view with that inlier ratio; search.align=True matches once more "
    "with image 1 warped onto image 0 by the best view's homography and refines the matches (kept unless "
    "they show parallax, a 3D scene); search.align=ratio does so with the ratio test (repeatable)"
)


def verbose_parent() -> argparse.ArgumentParser:
    """A parent parser holding ``-v/--verbose``, given to every parser of a command line.

    Its default is ``SUPPRESS``: a sub-command's parser copies its defaults over the values parsed before the
    command, so a plain ``False`` default there would undo ``tiepoint -v match ...``.
    """
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log progress details, show tracebacks",
    )
    return parent


def is_verbose(args: argparse.Namespace) -> bool:
    """Whether ``-v`` was given anywhere on the command line."""
    return bool(getattr(args, "verbose", False))


class CommandTable:
    """The sub-commands of a parser; each gets ``-v`` and records its full name (``"train clidd"``) as
    ``args.command`` for messages."""

    def __init__(self, parser: argparse.ArgumentParser, metavar: str = "COMMAND", prefix: str = "") -> None:
        self._commands = parser.add_subparsers(required=True, metavar=metavar)
        self._prefix = prefix

    def add(
        self, name: str, help: str, func: Command | None = None, description: str | None = None
    ) -> argparse.ArgumentParser:
        """A command ``name`` running ``func`` (``help`` is its line in the list, ``description`` heads its
        own help); add its arguments to the returned parser."""
        parser = self._commands.add_parser(
            name, help=help, description=description or help, parents=[verbose_parent()]
        )
        parser.set_defaults(command=self._prefix + name)
        if func is not None:
            parser.set_defaults(func=func)
        return parser

    def group(self, name: str, help: str, metavar: str = "COMMAND") -> CommandTable:
        """A command ``name`` whose own sub-commands are added to the returned table (as in ``tiepoint-lab
        train clidd``)."""
        return CommandTable(self.add(name, help), metavar, prefix=f"{self._prefix}{name} ")


def root_parser(prog: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser of a command line, with ``-v``."""
    return argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog, parents=[verbose_parent()]
    )


# --- argument groups ----------------------------------------------------------------------------------------


def add_option_argument(parser: argparse.ArgumentParser, help: str = METHOD_OPTION_HELP) -> None:
    """``--option KEY=VALUE`` (repeatable), read by :func:`tiepoint.config.parse_options`."""
    parser.add_argument("--option", action="append", metavar="KEY=VALUE", help=help)


def add_method_arguments(
    parser: argparse.ArgumentParser, default: str, keypoints: bool = True, help: str | None = None
) -> None:
    """``--method`` with its ``--option`` list, and ``--max-keypoints`` unless ``keypoints`` is false."""
    parser.add_argument(
        "--method", default=default, help=help or f"method name (default {default}; see `tiepoint methods`)"
    )
    if keypoints:
        parser.add_argument("--max-keypoints", type=int, help="keypoint budget per image")
    add_option_argument(parser)


def add_estimator_argument(parser: argparse.ArgumentParser) -> None:
    """``--estimator``: the robust estimator of the geometry."""
    parser.add_argument(
        "--estimator", default="poselib", choices=["poselib", "opencv"], help="robust estimator"
    )


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a batch stage runs: ``--backend``, ``--address``, ``--workers``."""
    parser.add_argument(
        "--backend", default="local", choices=["local", "ray"], help="where the work runs (default local)"
    )
    parser.add_argument(
        "--address", help="Ray cluster address (e.g. auto, ray://head:10001); default: a local Ray"
    )
    parser.add_argument("--workers", type=int, help="CPUs of a local Ray instance (default: all)")


def add_verification_arguments(parser: argparse.ArgumentParser) -> None:
    """The geometric verification's ``--max-error`` and ``--min-inlier-ratio``."""
    parser.add_argument(
        "--max-error", type=float, default=4.0, help="RANSAC threshold of the verification in pixels"
    )
    parser.add_argument(
        "--min-inlier-ratio",
        type=float,
        default=0.25,
        help="pairs with fewer inliers than this fraction of their matches fail the verification (default "
        "0.25, as GLOMAP; 0 keeps COLMAP's test alone)",
    )


def add_camera_arguments(parser: argparse.ArgumentParser) -> None:
    """The COLMAP camera: ``--camera-model``, ``--camera-params``, ``--camera-mode`` (``--single-camera``)
    and ``--fix-intrinsics``."""
    parser.add_argument(
        "--camera-model",
        default="SIMPLE_RADIAL",
        help="COLMAP camera model: SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL (default), RADIAL, OPENCV",
    )
    parser.add_argument(
        "--camera-params",
        help="known intrinsics in the model's order, comma-separated, principal point with the top-left "
        "pixel centre at (0,0), e.g. PINHOLE 1520.4,1525.9,302.32,246.87",
    )
    parser.add_argument(
        "--camera-mode",
        choices=("auto", "single", "per-folder", "per-image"),
        help="how images share cameras: auto (default: one camera per EXIF camera and image size, or per "
        "size without EXIF, with the EXIF focal length as a prior), single (one for all), per-folder, "
        "per-image",
    )
    parser.add_argument("--single-camera", action="store_true", help="the same as --camera-mode single")
    parser.add_argument(
        "--fix-intrinsics", action="store_true", help="keep the given intrinsics fixed in bundle adjustment"
    )


def add_mapper_argument(parser: argparse.ArgumentParser) -> None:
    """``--mapper``: COLMAP's incremental mapper or its global one."""
    parser.add_argument(
        "--mapper",
        choices=("incremental", "global"),
        default="incremental",
        help="incremental (default: COLMAP's incremental mapper) or global (rotation averaging and global "
        "positioning, GLOMAP's, through pycolmap.global_mapping)",
    )


def add_overwrite_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--overwrite``: compute again what the output already holds."""
    parser.add_argument("--overwrite", action="store_true", help=help)


def add_quiet_argument(parser: argparse.ArgumentParser, help: str = "no progress bars") -> None:
    """``--quiet``: less output while working."""
    parser.add_argument("--quiet", action="store_true", help=help)


def add_pair_files(parser: argparse.ArgumentParser) -> None:
    """The positional feature, pairs and match files of the pair stages."""
    parser.add_argument("features", type=Path, help="the HDF5 feature file")
    parser.add_argument("pairs", type=Path, help="a pairs file (tiepoint pairs, or hloc's)")
    parser.add_argument("matches", type=Path, help="the HDF5 match file")


def add_benchmark_arguments(
    parser: argparse.ArgumentParser, default_method: str, output: Path, root_help: str
) -> None:
    """A benchmark of matching methods on datasets with ground truth: datasets, methods, protocol overrides,
    method options and the report folder (defaulting to ``output``)."""
    parser.add_argument(
        "--dataset",
        nargs="+",
        default=["oxford", "middlebury"],
        help="oxford, hpatches, middlebury, middlebury:1,2 (views 1 or 2 apart), pairs:FILE or "
        "synthetic:FOLDER (default: oxford middlebury)",
    )
    parser.add_argument(
        "--methods", nargs="+", default=[default_method], help=f"methods (default {default_method})"
    )
    parser.add_argument("--root", type=Path, help=root_help)
    parser.add_argument("--estimator", help="robust estimator (default: the benchmark's protocol, poselib)")
    parser.add_argument(
        "--threshold", type=float, help="inlier threshold in pixels (default: the benchmark's protocol)"
    )
    parser.add_argument("--max-keypoints", type=int, help="keypoint budget (default: the protocol's, 2048)")
    parser.add_argument(
        "--resize", type=int, help="shrink images to this longer side first (default: native size)"
    )
    add_option_argument(parser, help="a method option, given to every method (repeatable)")
    parser.add_argument(
        "--output",
        type=Path,
        default=output,
        help=f"folder for results.json, table.txt and mma.png (default {output})",
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the results already in OUTPUT/results.json (same dataset and method are replaced)",
    )
    add_quiet_argument(parser)


# --- what the groups give -----------------------------------------------------------------------------------


def method_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--option`` values, with ``--max-keypoints`` when the command has it and it is given."""
    options = parse_options(args.option)
    if getattr(args, "max_keypoints", None) is not None:
        options["max_keypoints"] = args.max_keypoints
    return options


def open_backend(args: argparse.Namespace) -> Any:
    """The backend of :func:`add_backend_arguments` (a context manager that closes it)."""
    from .pipeline.backends import get_backend

    return get_backend(args.backend, args.address, args.workers)


def run_stage(args: argparse.Namespace, stage: Callable[..., Any], *arguments: Any, **options: Any) -> Any:
    """``stage(*arguments, **options)``, a pipeline stage (extraction, matching, verification), on the backend
    of :func:`add_backend_arguments` and recomputing what its output already holds with ``--overwrite``."""
    with open_backend(args) as backend:
        return stage(*arguments, backend=backend, overwrite=args.overwrite, **options)


def camera_options(args: argparse.Namespace) -> Any:
    """The :class:`~tiepoint.io.colmap.CameraOptions` of :func:`add_camera_arguments`."""
    from .io.colmap import CameraOptions

    params = None
    if args.camera_params:
        try:
            params = tuple(float(v) for v in args.camera_params.split(","))
        except ValueError:
            raise TiepointError(
                f"--camera-params expects comma-separated numbers, got {args.camera_params!r}"
            ) from None
    mode = args.camera_mode or ("single" if args.single_camera else "auto")
    if args.single_camera and mode != "single":
        raise TiepointError(f"--single-camera and --camera-mode {mode} contradict each other: give one")
    return CameraOptions(args.camera_model, params, refine=not args.fix_intrinsics, mode=mode)


def verification_options(args: argparse.Namespace) -> Any:
    """The :class:`~tiepoint.pipeline.verify.VerificationOptions` of :func:`add_verification_arguments`."""
    from .pipeline.verify import VerificationOptions

    return VerificationOptions(max_error=args.max_error, min_inlier_ratio=args.min_inlier_ratio)


def print_pair_summary(summary: Any) -> int:
    """Print a pair stage's summary; returns the exit status (:data:`INCOMPLETE` when pairs failed)."""
    print(summary)
    for (name0, name1), reason in summary.failed[:5]:
        print(f"  failed: {name0} {name1}: {reason}")
    if summary.failed:
        print("  run the same command again to compute the failed pairs")
    return INCOMPLETE if summary.failed else 0


PIPE_CLOSED = 141
"""Exit status when the reader of the standard output goes away (``tiepoint methods | head -1``): quietly,
with the status of a program killed by SIGPIPE (128 + 13), as ``seq 100000 | head -1`` under ``set -o
pipefail``."""


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse ``argv`` and run its command: errors of input, files and disks become one line on stderr and exit
    status 2 (or the error's ``exit_status``), and so does any other exception (a bug: the line says so);
    ``-v`` (before or after the command) logs progress and shows tracebacks instead. When the standard output
    is a pipe whose reader has gone (``| head``), the command stops quietly with :data:`PIPE_CLOSED`."""
    args = parser.parse_args(argv)
    verbose = is_verbose(args)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    name = f"{parser.prog} {args.command}"
    hint = "(run with -v for the traceback)"
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError as error:
        if _stdout_closed():
            return _quit_on_closed_stdout()
        if verbose:
            raise
        print(f"{name}: error: {error} {hint}", file=sys.stderr)
        return 2
    except (TiepointError, ValueError, KeyError, OSError) as error:  # bad input, missing files, full disks
        if verbose:
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"{name}: error: {message} {hint}", file=sys.stderr)
        return getattr(error, "exit_status", 2)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: still one line, the traceback with -v
        if verbose:
            raise
        print(
            f"{name}: error: unexpected {type(error).__name__}: {error} (a bug? please report it; {hint[1:]}",
            file=sys.stderr,
        )
        return 2
    return status or 0


def _stdout_closed() -> bool:
    """Whether the standard output is a pipe whose reader has gone (``poll`` reports an error on it)."""
    import select

    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (captured): the pipe was another one
        return False
    if not hasattr(select, "poll"):  # Windows: stdout is the likely cause
        return True
    poller = select.poll()
    poller.register(descriptor, select.POLLOUT)
    return any(event & select.POLLERR for _, event in poller.poll(0))


def _quit_on_closed_stdout() -> int:
    """:data:`PIPE_CLOSED`, with stdout pointed at ``os.devnull`` so that Python's flush at exit does not
    print "Broken pipe" (the recipe of Python's documentation of ``signal``)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass
    return PIPE_CLOSED
