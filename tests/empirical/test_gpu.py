"""The GPU paths against the CPU: batched training and the closed-form ReLU kernel (skipped without CUDA).

Run where torch sees a GPU: `python -m pytest tests/empirical/test_gpu.py`. On the CPU-only project machines
these tests skip; they were run on an H200 (bench/README.md, "GPU").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lood.analytic.kernel_relu import relu_nngp
from lood.empirical import train
from lood.settings import Arch, Training

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

ARCH = Arch(depth=3, width=64, activation="relu", bias=True, w_std=2**0.5, b_std=0.1)


def training(loss: str, momentum: float) -> Training:
    return Training.from_schema(
        n_in=4, n_out=4, epochs=3, batch_size=16, lr=0.05, lr_milestones=[2], lr_gamma=0.5, momentum=momentum, loss=loss
    )


@pytest.mark.parametrize("order_seed", [None, 7])
@pytest.mark.parametrize(("loss", "momentum"), [("mse", 0.0), ("cross_entropy", 0.9)])
def test_training_on_gpu_matches_cpu(order_seed, loss, momentum):
    """Same seeds, same data order: float32 logits agree to round-off after 3 epochs."""
    rng = np.random.default_rng(0)
    X, y = rng.random((100, 20)), rng.integers(0, 3, 100)
    models = train.Models([1, 2, 3, 4], order_seed=order_seed, exclude=5)
    outputs = train.Outputs(eval_X=X[:30])
    cpu = train.train_models(X, y, ARCH, training(loss, momentum), models, outputs, "cpu").logits
    gpu = train.train_models(X, y, ARCH, training(loss, momentum), models, outputs, "cuda").logits
    assert np.isfinite(gpu).all()
    np.testing.assert_allclose(gpu, cpu, rtol=0, atol=1e-4 * np.abs(cpu).max())


def test_closed_form_kernel_on_gpu_matches_cpu():
    rng = np.random.default_rng(1)
    X = torch.as_tensor(rng.random((300, 40)))
    arch = Arch(depth=9, width=1, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
    cpu = relu_nngp(X, None, arch, block_size=128)
    gpu = relu_nngp(X.cuda(), None, arch, block_size=128).cpu()
    assert float((gpu - cpu).abs().max() / cpu.abs().max()) <= 1e-12
