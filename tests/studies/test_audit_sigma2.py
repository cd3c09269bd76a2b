"""The audit's σ² by calibrate from a few in-models, and the top-1% overlaps between rules."""

from __future__ import annotations

import numpy as np
import pytest

from lood.analytic.gp import targets
from lood.analytic.kernel import kernel_and_diag
from lood.analytic.sigma2 import calibration_curve, choose_sigma2, sigma2_grid
from lood.analytic.spectral import eigen
from lood.empirical.train import Models, Outputs, train_models
from lood.seeds import int_seed
from lood.settings import Arch, AuditSettings, NNGPSettings, Training
from lood.studies import audit, audit_memory, audit_sigma2

ARCH = Arch(depth=2, width=32, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)


def test_top_overlap_counts_the_shared_top_records():
    a = np.arange(300.0)  # top 1% = 3 records: 299, 298, 297
    b = a.copy()
    assert audit_sigma2.top_overlap(a, b) == 1.0
    b[[299, 298]] = -1.0  # two of them leave the top of b
    assert audit_sigma2.top_overlap(a, b) == pytest.approx(1 / 3)
    assert audit_sigma2.top_overlap(a, -a) == 0.0


def test_audit_calibrates_sigma2_from_the_workflows_first_in_models():
    rng = np.random.default_rng(0)
    n, d = 120, 8
    y = rng.integers(0, 3, n)
    X = np.clip(rng.random((3, d))[y] + 0.3 * rng.standard_normal((n, d)), 0, None)
    training = Training.from_schema(lr=0.05, epochs=3, batch_size=32, n_in=4, n_out=4, loss="mse")
    nngp = NNGPSettings.from_schema(sigma2="calibrate", block_size=64)
    settings = AuditSettings.from_schema(calibrate_models=3, device="cpu", progress_seconds=1.0)
    res = audit.audit(X, y, ARCH, nngp, settings, 2, audit_memory.available_bytes(), None, training, 7)
    # independently: the first 3 in-models of the full workflow (train_in_chunk's seeds), trained here
    # through train_models, and the calibrate rule on all n records (n <= sigma2_records)
    seeds = [int_seed(7, "train_in", 0, m) for m in range(3)]
    from lood.empirical.data_order import data_order_seed

    logits = train_models(X, y, ARCH, training, Models(seeds, data_order_seed(training, 7, None)), Outputs(X)).logits
    K, _ = kernel_and_diag(X, None, ARCH, 64)
    grid = sigma2_grid(nngp.grid_min, nngp.grid_max, nngp.grid_points)
    ref = choose_sigma2(calibration_curve(eigen(K, targets(y, None)), logits.mean(0), grid, "mse"), "calibrate")
    assert res.info["sigma2_rule"] == "calibrate" and res.info["sigma2"] == pytest.approx(ref["sigma2"])
    assert res.info["sigma2_models"] == 3 and res.info["sigma2_records"] == n
    rules = {r["rule"]: r for r in res.info["sigma2_rules"]}
    assert set(rules) == {"calibrate", "marginal_likelihood"}
    assert rules["calibrate"]["top1_overlap_with_chosen"] == 1.0
    # without training settings calibrate falls back to the marginal likelihood and says so
    res_ml = audit.audit(X, y, ARCH, nngp, settings, 2, audit_memory.available_bytes(), None)
    assert res_ml.info["sigma2_rule"] == "marginal_likelihood"
    assert res_ml.info["sigma2"] == pytest.approx(rules["marginal_likelihood"]["sigma2"])
    assert "trains none" in res_ml.info["sigma2_note"]
