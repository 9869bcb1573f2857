"""A small, resumable training loop shared by every model family.

A recipe (e.g. :mod:`tiepoint_lab.train.clidd`) provides the model, a dataset, a loss function and a
validation function; :class:`Trainer` does the rest:

* fixed seeds, and a data order that depends only on ``(seed, epoch)``, so an interrupted run resumes
  exactly where it stopped;
* AdamW with a cosine schedule after a linear warm-up; gradient clipping;
* mixed precision (bfloat16 autocast) on a GPU, plain float32 on the CPU;
* a checkpoint every ``checkpoint_every`` steps, written atomically (``checkpoint.pt``), and the best model
  by the validation score (``best.pt``);
* one JSON line per log step in ``log.jsonl`` (losses, learning rate, seconds) and per validation.

Run directory layout::

    RUN/checkpoint.pt   model, optimiser, schedule, step, best score (resumes from here)
    RUN/best.pt         the model weights with the best validation score so far
    RUN/log.jsonl       {"step", "lr", "seconds", <losses>} and {"step", "validation": {...}} lines
    RUN/config.json     the training configuration (a resumed run must match it)
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from tiepoint.errors import OptionError
from tiepoint.io.files import atomic_path, write_json

__all__ = ["TrainConfig", "Trainer", "ship_run"]

LossFunction = Callable[[nn.Module, dict[str, Tensor]], dict[str, Tensor]]
"""Maps (model, batch) to named scalar losses; the key ``"total"`` is minimised."""
ValidateFunction = Callable[[nn.Module], dict[str, float]]
"""Maps the model (in eval mode) to named scores; :attr:`TrainConfig.best_metric` picks the best."""


@dataclass
class TrainConfig:
    steps: int = 20000
    batch_size: int = 8
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    clip_gradient: float = 1.0
    seed: int = 0
    workers: int = 2
    """Data-loading processes (0 loads in the training process)."""
    device: str = "cpu"
    log_every: int = 25
    validate_every: int = 500
    checkpoint_every: int = 100
    best_metric: str = "score"
    """Validation key to maximise for ``best.pt``."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "validate_every", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise OptionError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.learning_rate <= 0:
            raise OptionError(f"learning_rate must be positive, got {self.learning_rate}")


def seed_all(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Trains ``model`` on ``dataset`` with ``loss_fn``; see the module docstring.

    Args:
        model: the network (moved to ``config.device``).
        dataset: items are dicts of tensors; it may have ``set_epoch(epoch)`` for epoch-dependent
            augmentation.
        loss_fn: ``(model, batch) -> {"total": ..., other named losses}``.
        validate_fn: ``model -> {name: score}``, or None.
        config: :class:`TrainConfig`.
        run_dir: where checkpoints and logs go.
        describe: extra facts recorded in ``config.json`` (model size, data, command).
        collate_fn: makes a batch of items (default: torch's default collate); e.g.
            :func:`~tiepoint_lab.data.batching.collate_pairs` for a stream whose items differ in keys.
    """

    def __init__(
        self,
        model: nn.Module,
        dataset: Dataset,
        loss_fn: LossFunction,
        validate_fn: ValidateFunction | None,
        config: TrainConfig,
        run_dir: str | Path,
        describe: dict[str, Any] | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        self.config = config
        self.collate_fn = collate_fn
        self.device = torch.device(config.device)
        self.model = model.to(self.device)
        self.dataset = dataset
        self.loss_fn = loss_fn
        self.validate_fn = validate_fn
        self.run_dir = Path(run_dir)
        self.describe = {"train": asdict(config), **(describe or {})}
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._schedule)
        self.step = 0
        self.best_score = -math.inf
        self.seconds = 0.0
        self.last_scores: dict[str, float] = {}

    # -------------------------------------------------------------------------------------- schedule

    def _schedule(self, step: int) -> float:
        c = self.config
        if step < c.warmup_steps:
            return (step + 1) / c.warmup_steps
        progress = (step - c.warmup_steps) / max(1, c.steps - c.warmup_steps)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    # ------------------------------------------------------------------------------------------ data

    def _batches(self) -> Iterator[dict[str, Tensor]]:
        """Batches from the current step on; the order depends only on the seed and the epoch."""
        per_epoch = len(self.dataset) // self.config.batch_size
        if per_epoch == 0:
            raise OptionError(
                f"the dataset has {len(self.dataset)} items, fewer than one batch of {self.config.batch_size}"
            )
        while True:
            epoch, skip = divmod(self.step, per_epoch)
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            order = torch.randperm(
                len(self.dataset), generator=torch.Generator().manual_seed(self.config.seed * 100003 + epoch)
            )
            indices = order[skip * self.config.batch_size : per_epoch * self.config.batch_size].tolist()
            loader = DataLoader(
                self.dataset,
                batch_size=self.config.batch_size,
                sampler=indices,
                num_workers=self.config.workers,
                drop_last=True,
                persistent_workers=False,
                worker_init_fn=_worker_init,
                collate_fn=self.collate_fn,
            )
            yield from loader

    # ----------------------------------------------------------------------------------- checkpoints

    def _write_config(self) -> None:
        path = self.run_dir / "config.json"
        if path.is_file():
            previous = json.loads(path.read_text())
            if previous.get("train", {}).get("seed") != self.config.seed or previous.get(
                "model"
            ) != self.describe.get("model"):
                raise OptionError(
                    f"{self.run_dir} holds a run with another model or seed; choose a new --out directory"
                )
        write_json(path, self.describe)

    def _save(self, name: str, full: bool) -> None:
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "step": self.step,
            "best_score": self.best_score,
        }
        if full:
            state.update(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                seconds=self.seconds,
                rng=torch.get_rng_state(),
            )
        with atomic_path(self.run_dir / name) as temporary:
            torch.save(state, temporary)

    def _resume(self) -> None:
        path = self.run_dir / "checkpoint.pt"
        if not path.is_file():
            return
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.best_score, self.seconds = state["step"], state["best_score"], state["seconds"]
        torch.set_rng_state(state["rng"])
        print(f"resumed {path} at step {self.step}", flush=True)

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.run_dir / "log.jsonl", "a") as log:
            log.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------------------------------ loop

    def validate(self) -> dict[str, float]:
        if self.validate_fn is None:
            return {}
        self.model.eval()
        with torch.no_grad():
            scores = self.validate_fn(self.model)
        self.model.train()
        self.last_scores = scores
        self._log({"step": self.step, "validation": scores})
        print(
            f"step {self.step}: validation " + " ".join(f"{k}={v:.4f}" for k, v in scores.items()), flush=True
        )
        score = scores.get(self.config.best_metric)
        if score is not None and score > self.best_score:
            self.best_score = score
            self._save("best.pt", full=False)
        return scores

    def run(self, until: int | None = None, seconds: float | None = None) -> dict[str, float]:
        """Train until ``config.steps`` (resuming from ``checkpoint.pt``); returns the last validation.

        Args:
            until: stop (with a checkpoint) after this step instead, as if interrupted there.
            seconds: stop (with a checkpoint) after the first step that ends this many seconds after this call
                began, e.g. to fit a machine lent for a limited time; ``run`` again to go on.
        """
        if seconds is not None and seconds <= 0:
            raise OptionError(f"seconds must be positive, got {seconds}")
        deadline = None if seconds is None else time.perf_counter() + seconds
        stop = self.config.steps if until is None else min(until, self.config.steps)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        seed_all(self.config.seed)
        self._resume()
        self.model.train()
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()
        )
        running: dict[str, float] = {}
        counted = 0
        started = time.perf_counter() - self.seconds
        batches = self._batches()
        while self.step < stop:
            batch = {
                k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v
                for k, v in next(batches).items()
            }
            with autocast:
                losses = self.loss_fn(self.model, batch)
            self.optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_gradient)
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            self.seconds = time.perf_counter() - started
            for name, value in losses.items():
                running[name] = running.get(name, 0.0) + float(value.detach())
            counted += 1
            if self.step % self.config.log_every == 0:
                record = {
                    "step": self.step,
                    "lr": self.scheduler.get_last_lr()[0],
                    "seconds": round(self.seconds, 1),
                }
                record.update({k: round(v / counted, 5) for k, v in running.items()})
                self._log(record)
                print(" ".join(f"{k}={v}" for k, v in record.items()), flush=True)
                running, counted = {}, 0
            if self.step % self.config.validate_every == 0 or self.step == self.config.steps:
                self.validate()
            out_of_time = deadline is not None and time.perf_counter() >= deadline
            if (
                self.step % self.config.checkpoint_every == 0
                or self.step in (stop, self.config.steps)
                or out_of_time
            ):
                self._save("checkpoint.pt", full=True)
            if out_of_time:
                print(f"stopped at step {self.step} after {seconds:g} s; run again to resume", flush=True)
                break
        return self.last_scores or self.validate()


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)


def ship_run(
    run: str | Path,
    destination: str | Path,
    benchmark: dict[str, Any] | None = None,
    architecture: dict[str, Any] | None = None,
) -> Path:
    """Copy a run's best weights to ``destination`` (model weights, and the ``architecture`` as ``config``
    when given, which :func:`~tiepoint.nn.weights.load_with_architecture` reads) with a training record beside
    it.

    The record (``destination`` with ``.json``) holds the run's ``config.json`` (data, model, command), the
    steps trained, the best step and score, the training time, the git commit and, when given, benchmark
    scores.
    """
    run, destination = Path(run), Path(destination)
    best = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    checkpoint = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    record = {
        **json.loads((run / "config.json").read_text()),
        "steps": checkpoint["step"],
        "best_step": best["step"],
        "best_validation_score": best["best_score"],
        "train_seconds": round(checkpoint["seconds"], 1),
        "git_commit": _git_commit(),
        "shipped": time.strftime("%Y-%m-%d"),
    }
    if benchmark:
        record["benchmark"] = benchmark
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(destination) as temporary:
        torch.save({"model": best["model"], **({"config": architecture} if architecture else {})}, temporary)
    write_json(destination.with_suffix(".json"), record)
    return destination


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
