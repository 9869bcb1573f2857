"""The generic trainer: a time limit stops a run with a checkpoint that the next run resumes."""

import pytest
import torch

from tiepoint.errors import OptionError
from tiepoint_lab.train.trainer import TrainConfig, Trainer


class _Line(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        x = torch.tensor([float(index)])
        return {"x": x, "y": 3 * x + 1}


def _loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {"total": ((model(batch["x"]) - batch["y"]) ** 2).mean()}


def _trainer(run_dir) -> Trainer:
    config = TrainConfig(
        steps=5,
        batch_size=2,
        workers=0,
        log_every=1,
        validate_every=100,
        checkpoint_every=100,
        warmup_steps=1,
    )
    return Trainer(torch.nn.Linear(1, 1), _Line(), _loss, None, config, run_dir, {"model": "line"})


def test_time_limit_stops_with_a_checkpoint_and_the_next_run_resumes(tmp_path):
    first = _trainer(tmp_path)
    first.run(seconds=1e-9)  # out of time after the first step
    assert first.step == 1
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 1
    second = _trainer(tmp_path)
    second.run()
    assert second.step == 5
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 5


@pytest.mark.parametrize("seconds", [0, -1.0])
def test_time_limit_must_be_positive(tmp_path, seconds):
    with pytest.raises(OptionError, match="seconds"):
        _trainer(tmp_path).run(seconds=seconds)
