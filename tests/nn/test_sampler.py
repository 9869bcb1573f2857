"""The fused sampler kernel against the PyTorch reference path: values and gradients."""

import pytest
import torch

from tiepoint.nn.sampler import (
    fused_available,
    grid_sample_points,
    sample_aggregate,
    sample_aggregate_fused,
    sample_aggregate_reference,
)

pytestmark = pytest.mark.skipif(not fused_available(), reason="the fused kernel cannot be compiled here")


def _problem(dtype=torch.float64, points=7, samples=3, dim=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(4, 12, 15), (6, 6, 8), (3, 3, 4)]
    levels = [torch.randn(2, c, h, w, generator=generator, dtype=dtype) for c, h, w in shapes]
    # points spread over and slightly beyond each map, so border taps are exercised
    positions = [
        torch.rand(2, points, samples, 2, generator=generator, dtype=dtype)
        * torch.tensor([w + 2.0, h + 2.0], dtype=dtype)
        - 1.5
        for _, h, w in shapes
    ]
    weights = [torch.randn(samples, c, dim, generator=generator, dtype=dtype) for c, _, _ in shapes]
    bias = torch.randn(dim, generator=generator, dtype=dtype)
    return levels, positions, weights, bias


def test_fused_matches_reference_values():
    levels, positions, weights, bias = _problem()
    expected = sample_aggregate_reference(levels, positions, weights, bias)
    assert expected.shape == (2, 7, 5)
    torch.testing.assert_close(
        sample_aggregate_fused(levels, positions, weights, bias), expected, rtol=1e-10, atol=1e-10
    )


def test_fused_matches_reference_gradients():
    levels, positions, weights, bias = _problem(points=4, samples=2, dim=3)
    inputs = [t.requires_grad_() for t in (*levels, *positions, *weights)]

    def grads(function):
        output = function(levels, positions, weights, bias)
        (output * torch.linspace(-1, 1, output.numel(), dtype=output.dtype).view_as(output)).sum().backward()
        result = [t.grad.clone() for t in inputs]
        for t in inputs:
            t.grad = None
        return result

    for fused, reference in zip(
        grads(sample_aggregate_fused), grads(sample_aggregate_reference), strict=True
    ):
        torch.testing.assert_close(fused, reference, rtol=1e-9, atol=1e-9)


def test_fused_gradcheck():
    levels, positions, weights, _ = _problem(points=3, samples=2, dim=2)
    inputs = tuple(t.requires_grad_() for t in (*levels, *positions, *weights))
    assert torch.autograd.gradcheck(
        lambda *x: sample_aggregate_fused(list(x[:3]), list(x[3:6]), list(x[6:])), inputs
    )


def test_float32_dispatch_agrees():
    levels, positions, weights, bias = _problem(
        dtype=torch.float32, points=300, samples=8, dim=16
    )  # 13 x 8 >= 64: fused
    torch.testing.assert_close(
        sample_aggregate(levels, positions, weights, bias),
        sample_aggregate_reference(levels, positions, weights, bias),
        rtol=1e-4,
        atol=1e-4,
    )


def test_pixel_convention_and_zero_padding():
    level = torch.arange(12, dtype=torch.float64).view(1, 1, 3, 4)
    points = torch.tensor(
        [[[[0.0, 0.0], [3.0, 2.0], [1.5, 0.5], [-2.0, 0.0], [10.0, 10.0]]]], dtype=torch.float64
    )
    samples = grid_sample_points(level, points)[0, 0, 0]
    torch.testing.assert_close(samples, torch.tensor([0.0, 11.0, 3.5, 0.0, 0.0], dtype=torch.float64))
    weight = torch.ones(5, 1, 1, dtype=torch.float64)
    fused = sample_aggregate_fused([level], [points.transpose(1, 2).reshape(1, 1, 5, 2)], [weight])
    assert float(fused) == pytest.approx(14.5)


def test_shape_errors_name_the_level():
    levels, positions, weights, bias = _problem()
    with pytest.raises(ValueError, match="level 1"):
        sample_aggregate_reference(levels, positions, [weights[0], weights[0], weights[2]], bias)
    with pytest.raises(ValueError, match="one entry per level"):
        sample_aggregate_reference(levels[:2], positions, weights, bias)


def test_the_first_build_of_the_kernel_prints_one_line(monkeypatch, capsys):
    import torch.utils.cpp_extension

    from tiepoint.nn import sampler

    monkeypatch.setattr(torch.utils.cpp_extension, "load", lambda **kwargs: "kernel")
    monkeypatch.setattr(sampler, "_is_built", lambda: False)
    assert sampler._extension.__wrapped__() == "kernel"
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "compiling the fused CLIDD sampler kernel" in error
    monkeypatch.setattr(sampler, "_is_built", lambda: True)
    sampler._extension.__wrapped__()
    assert capsys.readouterr().err == ""


def test_is_built_answers_without_building():
    from tiepoint.nn.sampler import _is_built

    assert isinstance(_is_built(), bool)


def test_a_stale_build_lock_is_removed_and_a_fresh_one_kept(tmp_path, monkeypatch):
    import os
    import time

    from tiepoint.nn import sampler

    monkeypatch.setattr(sampler, "_build_folder", lambda: tmp_path)
    lock = tmp_path / "lock"
    lock.touch()
    sampler._clear_stale_lock()
    assert lock.exists(), "a build in progress must keep its lock"
    old = time.time() - sampler.STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))
    with pytest.warns(RuntimeWarning, match="stale kernel build lock"):
        sampler._clear_stale_lock()
    assert not lock.exists()
    sampler._clear_stale_lock()  # no lock: nothing to do
