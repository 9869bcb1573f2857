"""Export of extractors to ONNX, and a check with onnxruntime that the exported graph agrees.

The exported graph takes one ``(1, 1, H, W)`` float32 grayscale image in [0, 1] of the fixed size given at
export (resize or pad images to it) and returns ``keypoints (1, K, 2)``, ``scores (1, K)`` and
``descriptors (1, K, D)``, with exactly ``K = max_keypoints`` keypoints. The graph uses the PyTorch
reference sampler (the fused kernel is a C++ extension, not an ONNX operator).

Efficient LoFTR (:func:`export_eloftr`) exports as a graph of two ``(1, 1, H, W)`` grayscale images of the
size given at export (multiples of 32), with the RepVGG blocks folded, returning ``keypoints0 (M, 2)``,
``keypoints1 (M, 2)`` and ``confidence (M,)`` for a variable number ``M`` of matches (mutual nearest
neighbours and the refinement are in the graph); :func:`check_onnx_pair` compares it with PyTorch.

Needs the ``export`` extra (``pip install "tiepoint[export]"``: onnx and onnxruntime).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .errors import OptionError, TiepointError
from .features.clidd import CLIDDModel
from .io.files import atomic_path
from .io.image import ImageLike, as_image, to_gray
from .matchers.eloftr import EfficientLoFTR
from .matchers.glue import Glue
from .types import Features

__all__ = [
    "ExportCheck",
    "GlueExportCheck",
    "PairExportCheck",
    "check_onnx",
    "check_onnx_glue",
    "check_onnx_pair",
    "export_clidd",
    "export_eloftr",
    "export_glue",
]


class _Graph(nn.Module):
    """The model with detection and description as one function of the image."""

    def __init__(self, model: CLIDDModel, max_keypoints: int) -> None:
        super().__init__()
        self.model = model
        self.max_keypoints = max_keypoints

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        output = self.model(image, self.max_keypoints)
        return output["keypoints"], output["scores"], output["descriptors"]


def export_clidd(
    path: str | Path,
    size: str = "A48",
    weights: str | Path | None = None,
    image_size: tuple[int, int] = (480, 640),
    max_keypoints: int = 2048,
    model: CLIDDModel | None = None,
) -> Path:
    """Export a CLIDD extractor to an ONNX file (written atomically).

    Args:
        path: the ``.onnx`` file to write.
        size: the CLIDD size (its shipped weights, or ``weights``).
        image_size: ``(H, W)`` of the graph's input.
        max_keypoints: ``K``.
        model: export this model instead of loading one.
    """
    height, width = image_size
    if height < 32 or width < 32 or max_keypoints < 1 or max_keypoints > height * width // 64:
        raise OptionError(
            f"image_size {image_size} and max_keypoints {max_keypoints}: need sides >= 32 and at most "
            "one keypoint per 64 pixels (the graph returns exactly max_keypoints)"
        )
    model = model if model is not None else CLIDDModel.from_pretrained(size, weights)
    graph = _Graph(model, max_keypoints).eval()
    fused = model.use_fused_sampler
    model.use_fused_sampler = False
    try:
        return _export(
            graph, path, (torch.rand(1, 1, height, width),), ["image"], ["keypoints", "scores", "descriptors"]
        )
    finally:
        model.use_fused_sampler = fused


def _export(
    graph: nn.Module,
    path: str | Path,
    inputs: tuple[Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    dynamic_outputs: bool = False,
    dynamic_axes: dict[str, dict[int, str]] | None = None,
) -> Path:
    """Trace ``graph`` on ``inputs`` into an ONNX file (opset 17), written atomically; the graph stays in eval
    mode.

    ``dynamic_outputs``: the first dimension of every output varies (a number of matches); ``dynamic_axes``:
    other varying dimensions, by input or output name (as :func:`torch.onnx.export` takes them)."""
    path = Path(path)
    try:
        with atomic_path(path) as temporary, torch.no_grad():
            torch.onnx.export(
                graph,
                inputs,
                str(temporary),
                input_names=input_names,
                output_names=output_names,
                dynamic_axes={
                    **({name: {0: "matches"} for name in output_names} if dynamic_outputs else {}),
                    **(dynamic_axes or {}),
                }
                or None,
                opset_version=17,
                dynamo=False,
            )
    finally:
        graph.eval()  # export restores the wrapper's mode onto the model: keep it in eval mode
    return path


class _PairGraph(nn.Module):
    """Efficient LoFTR as a function of two images with fixed thresholds."""

    def __init__(
        self, model: EfficientLoFTR, threshold: float, optimized: bool, raw_threshold: float
    ) -> None:
        super().__init__()
        self.model, self.threshold, self.optimized, self.raw_threshold = (
            model,
            threshold,
            optimized,
            raw_threshold,
        )

    def forward(self, image0: Tensor, image1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        output = self.model(image0, image1, self.threshold, self.optimized, self.raw_threshold)
        return output["keypoints0"], output["keypoints1"], output["confidence"]


def export_eloftr(
    path: str | Path,
    config: str = "small",
    weights: str | Path | None = None,
    image_size: tuple[int, int] = (480, 640),
    optimized: bool = False,
    threshold: float = 0.0,
    raw_threshold: float = 5.0,
    model: EfficientLoFTR | None = None,
) -> Path:
    """Export an Efficient LoFTR matcher to an ONNX file (written atomically); see the module docstring.

    Args:
        path: the ``.onnx`` file to write.
        config: the config whose shipped (or ``weights``) weights to export.
        image_size: ``(H, W)`` of both inputs, multiples of 32.
        optimized: export the optimized mode (no dual-softmax), as ``eloftr-opt``.
        threshold, raw_threshold: the coarse thresholds (see :meth:`EfficientLoFTR.forward`).
        model: export this model instead (its RepVGG blocks are folded first).
    """
    height, width = image_size
    model = model if model is not None else EfficientLoFTR.from_pretrained(config, weights)
    if height % model.multiple or width % model.multiple or min(height, width) < model.multiple:
        raise OptionError(
            f"image_size {image_size}: both sides must be positive multiples of {model.multiple}"
        )
    graph = _PairGraph(model.reparameterize(), threshold, optimized, raw_threshold).eval()
    images = (torch.rand(1, 1, height, width), torch.rand(1, 1, height, width))
    return _export(
        graph,
        path,
        images,
        ["image0", "image1"],
        ["keypoints0", "keypoints1", "confidence"],
        dynamic_outputs=True,
    )


@dataclass
class ExportCheck:
    """How far onnxruntime's output is from PyTorch's on one image.

    Keypoints are paired by position. In flat image regions many locations get exactly the same score, and the
    two runtimes break such ties differently, so some selected keypoints differ while the selected scores
    agree: ``max_score_error`` compares the sorted scores.
    """

    keypoints: int
    max_score_error: float
    """Largest difference between the two sorted score lists."""
    shared: float
    """Share of onnxruntime's keypoints that PyTorch also returns (within 0.01 px)."""
    max_keypoint_error: float
    """Largest position difference over the shared keypoints, pixels."""
    max_descriptor_error: float
    """Largest descriptor component difference over the shared keypoints."""


def _onnx_session(path: str | Path) -> Any:
    """An onnxruntime session (on the CPU) of an exported graph."""
    try:
        import onnxruntime
    except ImportError as error:
        raise TiepointError(
            'checking an ONNX export needs onnxruntime: pip install "tiepoint[export]"'
        ) from error
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _graph_input(image: ImageLike, size: tuple[int, int]) -> Tensor:
    """``image`` in gray, resized to a graph's input ``size`` ``(height, width)``: ``(1, 1, H, W)`` in
    [0, 1]."""
    import cv2

    height, width = size
    gray = cv2.resize(to_gray(as_image(image)), (width, height), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(gray).float()[None, None] / 255.0


def check_onnx(path: str | Path, model: CLIDDModel, image: ImageLike) -> ExportCheck:
    """Run an exported graph with onnxruntime and PyTorch on ``image`` and compare.

    The image is resized to the graph's input size.
    """
    session = _onnx_session(path)
    size = tuple(session.get_inputs()[0].shape[2:])
    tensor = _graph_input(image, size)
    keypoints, scores, descriptors = (array[0] for array in session.run(None, {"image": tensor.numpy()}))
    with torch.no_grad():
        output = model.eval()(tensor, keypoints.shape[0])
    reference = output["keypoints"][0].numpy()
    score_error = float(np.abs(np.sort(scores) - np.sort(output["scores"][0].numpy())).max())
    distance = torch.cdist(torch.from_numpy(keypoints), torch.from_numpy(reference))
    nearest_distance, nearest = distance.min(1)
    shared = (nearest_distance < 0.01).numpy()
    if not shared.any():
        return ExportCheck(len(keypoints), score_error, 0.0, float("inf"), float("inf"))
    partner = nearest.numpy()[shared]
    return ExportCheck(
        keypoints=len(keypoints),
        max_score_error=score_error,
        shared=float(shared.mean()),
        max_keypoint_error=float(nearest_distance[torch.from_numpy(shared)].max()),
        max_descriptor_error=float(
            np.abs(descriptors[shared] - output["descriptors"][0].numpy()[partner]).max()
        ),
    )


@dataclass
class PairExportCheck:
    """How far onnxruntime's Efficient LoFTR matches are from PyTorch's on one image pair."""

    matches: int
    """Matches onnxruntime returns."""
    reference_matches: int
    """Matches PyTorch returns."""
    shared: float
    """Share of onnxruntime's matches whose image-0 keypoint PyTorch also returns (same pixel)."""
    max_keypoint_error: float
    """Largest image-1 position difference over the shared matches, pixels."""
    max_confidence_error: float
    """Largest confidence difference over the shared matches."""


def check_onnx_pair(
    path: str | Path,
    model: EfficientLoFTR,
    image0: ImageLike,
    image1: ImageLike,
    optimized: bool = False,
    threshold: float = 0.0,
    raw_threshold: float = 5.0,
) -> PairExportCheck:
    """Run an exported Efficient LoFTR graph with onnxruntime and PyTorch on two images (resized to the
    graph's input size) and compare the matches."""
    session = _onnx_session(path)
    size = tuple(session.get_inputs()[0].shape[2:])
    tensors = [_graph_input(image, size) for image in (image0, image1)]
    keypoints0, keypoints1, confidence = session.run(
        None, {"image0": tensors[0].numpy(), "image1": tensors[1].numpy()}
    )
    with torch.no_grad():
        output = model.eval()(tensors[0], tensors[1], threshold, optimized, raw_threshold)
    reference = {tuple(p): i for i, p in enumerate(output["keypoints0"].numpy().round().astype(int).tolist())}
    pairs = [
        (i, reference[tuple(p)])
        for i, p in enumerate(keypoints0.round().astype(int).tolist())
        if tuple(p) in reference
    ]
    if not pairs:
        return PairExportCheck(len(keypoints0), len(reference), 0.0, float("inf"), float("inf"))
    mine, theirs = (np.array(index) for index in zip(*pairs))
    return PairExportCheck(
        matches=len(keypoints0),
        reference_matches=len(output["keypoints0"]),
        shared=len(pairs) / max(1, len(keypoints0)),
        max_keypoint_error=float(np.abs(keypoints1[mine] - output["keypoints1"].numpy()[theirs]).max()),
        max_confidence_error=float(np.abs(confidence[mine] - output["confidence"].numpy()[theirs]).max()),
    )


class _GlueGraph(nn.Module):
    """Glue with every layer run (early exit and pruning are control flow that depends on the data)."""

    def __init__(self, net: Glue) -> None:
        super().__init__()
        self.net = net

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        return self.net.match_every_layer(*inputs)


GLUE_INPUTS = ["keypoints0", "keypoints1", "descriptors0", "descriptors1", "image_size0", "image_size1"]
"""The inputs of an exported Glue graph, in order (shapes as :meth:`Glue.forward`, batch 1)."""


def export_glue(path: str | Path, features: str = "clidd-s96", weights: str | Path | None = None) -> Path:
    """Export Glue (the weights shipped for ``features``, or ``weights``) to an ONNX file (written
    atomically) whose keypoint counts ``N`` and ``M`` vary: inputs :data:`GLUE_INPUTS`, outputs
    ``matches0 (1, N)`` int64 (-1: none) and ``scores0 (1, N)``. Every layer runs on every point."""
    net = Glue.from_pretrained(features, weights)
    dim = net.config.input_dim
    inputs = (
        torch.rand(1, 64, 2) * 100, torch.rand(1, 48, 2) * 100,
        torch.nn.functional.normalize(torch.randn(1, 64, dim), dim=-1),
        torch.nn.functional.normalize(torch.randn(1, 48, dim), dim=-1),
        torch.tensor([[100.0, 100.0]]), torch.tensor([[100.0, 100.0]]),
    )  # fmt: skip
    axes = {
        "keypoints0": {1: "N"},
        "descriptors0": {1: "N"},
        "keypoints1": {1: "M"},
        "descriptors1": {1: "M"},
    }
    axes.update(matches0={1: "N"}, scores0={1: "N"})
    return _export(
        _GlueGraph(net).eval(), path, inputs, GLUE_INPUTS, ["matches0", "scores0"], dynamic_axes=axes
    )


@dataclass
class GlueExportCheck:
    """How far onnxruntime's Glue matches are from PyTorch's (every layer run) on one pair of feature sets."""

    matches: int
    """Matches onnxruntime keeps."""
    same: float
    """Share of the keypoints of image 0 with the same match (or the same absence of one) in both."""
    max_score_error: float
    """Largest difference of the mutual-best probabilities."""


def check_onnx_glue(path: str | Path, net: Glue, features0: Features, features1: Features) -> GlueExportCheck:
    """Run an exported Glue graph with onnxruntime and the network in PyTorch on two feature sets; compare."""
    session = _onnx_session(path)
    arrays = [
        np.ascontiguousarray(x, np.float32)[None]
        for x in (features0.keypoints, features1.keypoints, features0.descriptors, features1.descriptors)
    ]
    arrays += [np.array([features.image_size], np.float32) for features in (features0, features1)]
    matches0, scores0 = session.run(None, dict(zip(GLUE_INPUTS, arrays, strict=True)))
    with torch.no_grad():
        reference, reference_scores = net.eval().match_every_layer(*(torch.from_numpy(a) for a in arrays))
    return GlueExportCheck(
        matches=int((matches0 >= 0).sum()),
        same=float((matches0 == reference.numpy()).mean()),
        max_score_error=float(np.abs(scores0 - reference_scores.numpy()).max(initial=0.0)),
    )
