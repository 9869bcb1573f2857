"""Export of extractors to ONNX, and a check with onnxruntime that the exported graph agrees.

The exported graph takes one ``(1, 1, H, W)`` float32 grayscale image in [0, 1] of the fixed size given at
export (resize or pad images to it) and returns ``keypoints (1, K, 2)``, ``scores (1, K)`` and
``descriptors (1, K, D)``, with exactly ``K = max_keypoints`` keypoints. The graph uses the PyTorch
reference sampler (the fused kernel is a C++ extension, not an ONNX operator).

Needs the ``export`` extra (``pip install "tiepoint[export]"``: onnx and onnxruntime).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .errors import OptionError, TiepointError
from .features.clidd import CLIDDModel
from .io.files import atomic_path
from .io.image import ImageLike, as_image, to_gray

__all__ = ["ExportCheck", "check_onnx", "export_clidd"]


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
            f"image_size {image_size} and max_keypoints {max_keypoints}: need sides >= 32 and at most one keypoint "
            "per 64 pixels (the graph returns exactly max_keypoints)"
        )
    model = model if model is not None else CLIDDModel.from_pretrained(size, weights)
    graph = _Graph(model, max_keypoints).eval()
    fused = model.use_fused_sampler
    model.use_fused_sampler = False
    path = Path(path)
    try:
        with atomic_path(path) as temporary, torch.no_grad():
            torch.onnx.export(
                graph,
                (torch.rand(1, 1, height, width),),
                str(temporary),
                input_names=["image"],
                output_names=["keypoints", "scores", "descriptors"],
                opset_version=17,
                dynamo=False,
            )
    finally:
        model.use_fused_sampler = fused
        graph.eval()  # export restores the wrapper's mode onto the model: keep it in eval mode
    return path


@dataclass
class ExportCheck:
    """How far onnxruntime's output is from PyTorch's on one image.

    Keypoints are paired by position. In flat image regions many locations get exactly the same score, and the
    two runtimes break such ties differently, so some selected keypoints differ while the selected scores agree:
    ``max_score_error`` compares the sorted scores.
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


def check_onnx(path: str | Path, model: CLIDDModel, image: ImageLike) -> ExportCheck:
    """Run an exported graph with onnxruntime and PyTorch on ``image`` and compare.

    The image is resized to the graph's input size.
    """
    try:
        import onnxruntime
    except ImportError as error:
        raise TiepointError('checking an ONNX export needs onnxruntime: pip install "tiepoint[export]"') from error
    import cv2

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, _, height, width = session.get_inputs()[0].shape
    gray = cv2.resize(to_gray(as_image(image)), (width, height), interpolation=cv2.INTER_AREA)
    tensor = torch.from_numpy(gray).float()[None, None] / 255.0
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
        max_descriptor_error=float(np.abs(descriptors[shared] - output["descriptors"][0].numpy()[partner]).max()),
    )
