"""The FLOP counter of ``benchmarks/bench_flops.py`` against hand counts, and the world-model step count."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_flops as BF  # noqa: E402


def test_matmul_is_2mnk():
    a, b = torch.randn(5, 7), torch.randn(7, 3)
    assert BF.count_flops(lambda: a @ b).total == 2 * 5 * 3 * 7
    x, y = torch.randn(4, 5, 7), torch.randn(4, 7, 3)
    assert BF.count_flops(lambda: torch.bmm(x, y)).total == 4 * 2 * 5 * 3 * 7


def test_linear_stack_forward_and_backward():
    torch.manual_seed(0)
    M, K, N1, N2 = 8, 16, 32, 4
    net = nn.Sequential(nn.Linear(K, N1), nn.SiLU(), nn.Linear(N1, N2))
    forward = 2 * M * K * N1 + 2 * M * N1 * N2  # biases, activations: not counted
    x = torch.randn(M, K)
    with torch.no_grad():
        assert BF.count_flops(lambda: net(x)).total == forward
    # backward = grad of the input + grad of the weight, each a product as large as the forward one
    xg = torch.randn(M, K, requires_grad=True)
    assert BF.count_flops(lambda: net(xg).sum().backward()).total == 3 * forward
    # an input without gradient: the first layer has no input-gradient product
    count = BF.count_flops(lambda: net(x).sum().backward())
    assert count.total == 3 * forward - 2 * M * K * N1
    assert set(count.by_op) <= {"aten.addmm", "aten.mm"} and sum(count.by_op.values()) == count.total


def test_conv2d_forward_and_backward():
    torch.manual_seed(0)
    N, C, H, Cout, k, s = 2, 3, 16, 8, 4, 2
    conv = nn.Conv2d(C, Cout, k, stride=s)
    Ho = (H - k) // s + 1
    forward = 2 * N * Cout * Ho * Ho * C * k * k
    x = torch.randn(N, C, H, H)
    with torch.no_grad():
        assert BF.count_flops(lambda: conv(x)).total == forward
    xg = x.clone().requires_grad_(True)
    assert BF.count_flops(lambda: conv(xg).sum().backward()).total == 3 * forward
    assert BF.count_flops(lambda: conv(x).sum().backward()).total == 2 * forward  # weight gradient only


def test_gemm_gflops_is_positive():
    assert BF.gemm_gflops(64, torch.float32, min_time=0.0, min_reps=2) > 0


@pytest.fixture
def tiny_model():
    from genrl.mfwm.model import MFWM
    from genrl.worldmodel.config import preset

    def make():
        torch.manual_seed(0)
        cfg = preset("tiny")
        model = MFWM(cfg, 3, 16, 8)
        return cfg, model, model.optimizers()
    return make


def test_world_model_step_count_is_positive_and_deterministic(tiny_model):
    cfg, model, opts = tiny_model()
    batch = BF.synthetic_batch(cfg, 3, 16, seed=0)
    first = BF.train_step_flops(model, batch, opts)
    assert first.total > 0
    assert first.phases["world_model"] > 0 and first.phases["connector_aligner"] > 0
    assert sum(first.phases.values()) == first.total == sum(first.by_op.values())
    # the encoder's first convolution alone (forward + weight gradient) is a lower bound
    d = cfg.cnn_depth
    first_conv = 2 * cfg.batch_size * cfg.batch_length * d * 31 * 31 * 3 * 4 * 4
    assert first.phases["world_model"] > 2 * first_conv
    assert "connector_loss" not in vars(model)  # the phase marker is removed again
    # the same step again (other weights now), and a fresh model on another batch: the same count
    assert BF.train_step_flops(model, batch, opts).total == first.total
    cfg2, model2, opts2 = tiny_model()
    assert BF.train_step_flops(model2, BF.synthetic_batch(cfg2, 3, 16, seed=1), opts2).total == first.total
