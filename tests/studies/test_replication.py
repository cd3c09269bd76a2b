"""The full-size replication (lood.studies.replication): its seed stream, and its tables against scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from lood.config import SCHEMA_PATH, fill_defaults
from lood.empirical import mia
from lood.empirical.model_bootstrap import model_scores
from lood.empirical.train import Models, Outputs, train_models
from lood.empirical.training_job import TrainingJob
from lood.errors import LoodInputError
from lood.seeds import int_seed
from lood.settings import Arch, Training
from lood.studies import replication as rep

TINY_ARCH = Arch(depth=1, width=8, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)


def _training() -> Training:
    cfg = fill_defaults({"training": {"n_in": 4, "n_out": 4, "epochs": 2, "batch_size": 8, "lr": 0.05}}, SCHEMA_PATH)
    return Training.from_config(cfg["training"])


def test_replication_models_are_train_models_under_the_replication_seed():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 5)), rng.integers(0, 2, 30)
    job = TrainingJob(X, y, TINY_ARCH, _training(), 11)
    out = rep.train_replication(job, np.array([7, 2]))
    base = int_seed(11, "replication", 0)
    assert base == rep.replication_seed(11) and base != 11
    assert out["in_logits"].shape == (4, 2, 2) and out["out_logits"].shape == (2, 4, 2)
    seeds_in = [int_seed(base, "train_in", 0, m) for m in range(4)]
    want_in = train_models(X, y, TINY_ARCH, job.training, Models(seeds_in), Outputs(eval_X=X[[7, 2]])).logits
    np.testing.assert_allclose(out["in_logits"], want_in, rtol=1e-6)
    seeds_out = [int_seed(base, "train_out", 2, m) for m in range(4)]
    want_out = train_models(
        X, y, TINY_ARCH, job.training, Models(seeds_out, exclude=2), Outputs(eval_X=X[[2]]), n_classes=2
    ).logits
    np.testing.assert_allclose(out["out_logits"][1], want_out[:, 0], rtol=1e-6)
    # not the experiment's own models
    own = train_models(X, y, TINY_ARCH, job.training, Models([int_seed(11, "train_in", 0, 0)]), Outputs(eval_X=X[[7]]))
    assert not np.allclose(own.logits[0, 0], out["in_logits"][0, 0])


def test_replication_records_are_the_first_studied_ones():
    records = pd.DataFrame({"record": [9, 4, 7, 1], "label": [0, 1, 0, 1]})
    assert rep.replication_records(records, 3)["record"].tolist() == [9, 4, 7]
    with pytest.raises(LoodInputError, match="replication.records = 5"):
        rep.replication_records(records, 5)
    with pytest.raises(LoodInputError, match=">= 3"):
        rep.replication_records(records, 2)


def test_replication_tables_against_direct_correlations():
    """Planted leakage; the summary's test-retest, one-run, mean-of-runs and disattenuated values against scipy."""
    R, M = 24, 30
    shift = np.linspace(0.0, 1.5, R)
    records = np.arange(100, 100 + R)

    def run(seed):
        g = np.random.default_rng(seed)
        inn, out = g.normal(size=(M, R, 2)), g.normal(size=(R, M, 2))
        inn[..., 0] += shift
        return mia.AttackedRecords(records, np.zeros(R, dtype=int), inn, out)

    a1, a2 = run(1), run(2)
    run1, run2 = mia.mia_table(a1, 10, 0), mia.mia_table(a2, 10, 5)
    halves = mia.half_attacks(a1, 10, 0, 2)
    lood = pd.DataFrame({"record": records, "kl": shift**2 + 0.01, "mse": shift**2, "auc_nngp": 0.5 + shift / 4})
    scores = model_scores(records, a1.in_logits, a1.out_logits)
    per_record, summary = rep.replication_tables(run1, run2, lood, halves, scores, 200, 0)
    assert len(per_record) == R and list(summary["predictor"]) == ["kl", "auc_nngp", "sqrt_mse"]
    row = summary.set_index("predictor").loc["kl"]
    x = np.log10(lood["kl"])
    retest = st.spearmanr(run1["auc"], run2["auc"]).statistic
    one_run = np.mean([st.spearmanr(x, r["auc"]).statistic for r in (run1, run2)])
    assert row["retest_spearman_r"] == pytest.approx(retest)
    assert row["spearman_retest"] == pytest.approx(retest)
    assert row["spearman_one_run"] == pytest.approx(one_run)
    assert row["spearman_disattenuated"] == pytest.approx(one_run / np.sqrt(retest))
    assert row["mean_of_runs_spearman_r"] == pytest.approx(st.spearmanr(x, (run1["auc"] + run2["auc"]) / 2).statistic)
    assert row["sd_rerun"] == pytest.approx(np.sqrt(np.mean((run1["auc"] - run2["auc"]) ** 2) / 2))
    assert 0 < row["sd_model_bootstrap"] < 0.2 and np.isfinite(row["half_size_spearman_disattenuated"])
