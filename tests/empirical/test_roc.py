"""Pooled ROC at low FPR, per-record ε lower bounds (lood.empirical.roc) and the attacks' scores (attack_scores)."""

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

from lood.empirical.attack_scores import attack_scores, lr_scores, offline_lira_scores, record_losses
from lood.empirical.mia import AttackedRecords, _gaussian_logpdf
from lood.empirical.roc import (
    epsilon_lower_bound,
    pooled_roc_table,
    pooled_summary,
    privacy_tables,
    record_privacy_table,
    tpr_at_fpr,
)
from lood.errors import LoodInputError
from lood.settings import PrivacySettings


def sklearn_tpr_at(pos, neg, alpha):
    """Largest TPR on sklearn's ROC with FPR <= alpha (ties broken the same way: only strict passes count)."""
    y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    fpr, tpr, thr = roc_curve(y, np.r_[pos, neg], drop_intermediate=False)
    # sklearn counts score >= threshold; on continuous scores that equals > the next lower score.
    return tpr[fpr <= alpha + 1e-12].max()


@pytest.mark.parametrize("alpha", [0.001, 0.01, 0.05, 0.3])
def test_tpr_at_fpr_matches_sklearn(alpha):
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1.0, 1.0, 3000), rng.normal(0.0, 1.0, 5000)
    assert tpr_at_fpr(pos, neg, alpha) == pytest.approx(sklearn_tpr_at(pos, neg, alpha))


def test_tpr_at_fpr_counts_allowed_negatives():
    neg = np.arange(1000.0)  # 0..999
    pos = np.array([998.5, 997.5, 996.5, 10.0])
    assert tpr_at_fpr(pos, neg, 0.001) == 0.25  # one negative (999) may pass: threshold 998
    assert tpr_at_fpr(pos, neg, 0.0029) == 0.5  # two may pass: threshold 997
    assert tpr_at_fpr(pos, neg, 0.0) == 0.0  # none may pass: above 999
    assert tpr_at_fpr(pos, neg, 1.0) == 1.0


def test_lr_scores_leave_the_scored_model_out():
    """Brute force: refit the attack's own Gaussians without the scored model, one model at a time."""
    rng = np.random.default_rng(1)
    f_in, f_out = rng.normal(0.3, 1, (9, 3)), rng.normal(0, 1.2, (7, 3))
    s_in, s_out = lr_scores(f_in, f_out)
    for i in range(9):
        rest = np.delete(f_in, i, axis=0)
        want = _gaussian_logpdf(rest[None], f_in[None, [i]]) - _gaussian_logpdf(f_out[None], f_in[None, [i]])
        assert s_in[i] == pytest.approx(want[0, 0])
    for k in range(7):
        rest = np.delete(f_out, k, axis=0)
        want = _gaussian_logpdf(f_in[None], f_out[None, [k]]) - _gaussian_logpdf(rest[None], f_out[None, [k]])
        assert s_out[k] == pytest.approx(want[0, 0])


def test_lr_score_is_the_log_likelihood_ratio_of_the_fitted_gaussians():
    rng = np.random.default_rng(2)
    f_in, f_out = rng.normal(0.5, 1, (40, 2)), rng.normal(0, 1, (30, 2))
    s_in, _ = lr_scores(f_in, f_out)
    rest = f_in[1:]
    cov_in = np.cov(rest.T) + (1e-6 * np.trace(np.cov(rest.T)) / 2 + 1e-12) * np.eye(2)
    cov_out = np.cov(f_out.T) + (1e-6 * np.trace(np.cov(f_out.T)) / 2 + 1e-12) * np.eye(2)
    want = stats.multivariate_normal(rest.mean(0), cov_in).logpdf(f_in[0]) - stats.multivariate_normal(
        f_out.mean(0), cov_out
    ).logpdf(f_in[0])
    assert s_in[0] == pytest.approx(want)


def test_offline_lira_and_loss():
    phi_in, phi_out = np.array([3.0, 4.0]), np.array([0.0, 1.0, 2.0, 5.0])
    s_in, s_out = offline_lira_scores(phi_in, phi_out)
    assert s_in == pytest.approx((phi_in - 2.0) / np.std(phi_out, ddof=1))
    assert s_out[0] == pytest.approx((0.0 - np.mean([1, 2, 5])) / np.std([1, 2, 5], ddof=1))
    z = np.array([[0.2, -0.1], [1.0, 2.0]])
    assert record_losses(z, 0, "mse") == pytest.approx(
        [((0.2 - 0.5) ** 2 + (-0.1 + 0.5) ** 2) / 2, (0.5**2 + 2.5**2) / 2]
    )
    ce = -np.log(np.exp(z[:, 1]) / np.exp(z).sum(1))
    assert record_losses(z, 1, "cross_entropy") == pytest.approx(ce)
    with pytest.raises(LoodInputError, match="training.loss"):
        record_losses(z, 0, "hinge")


def planted_attack(R=12, m_in=60, m_out=60, C=2, shift=1.0, seed=3):
    """Records whose in-logits are shifted by shift x (record index / R) from the out-logits."""
    rng = np.random.default_rng(seed)
    in_logits = rng.normal(size=(m_in, R, C))
    out_logits = rng.normal(size=(R, m_out, C))
    in_logits[..., 0] += shift * np.arange(R)[None] / R
    return AttackedRecords(list(range(R)), [0] * R, in_logits, out_logits)


def test_pooled_summary_against_sklearn_and_bootstrap_contains_point():
    attacked = planted_attack(shift=3.0)
    scores = attack_scores(attacked, "mse")
    table = pooled_summary(scores, [0.01, 0.1], n_boot=200, base_seed=0).set_index("attack")
    pos, neg = scores["lr"][0].ravel(), scores["lr"][1].ravel()
    row = table.loc["lr"]
    assert row["auc"] == pytest.approx(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))
    assert row["tpr_at_0.01"] == pytest.approx(sklearn_tpr_at(pos, neg, 0.01))
    assert row["negatives_at_0.01"] == 7  # ⌊0.01 x 720⌋
    for col in ("auc", "tpr_at_0.01", "tpr_at_0.1"):
        assert row[f"{col}_lo"] <= row[col] <= row[f"{col}_hi"]
        assert row[f"{col}_lo"] < row[f"{col}_hi"]
    assert set(table.index) == {"lr", "lira_offline", "loss"}
    # A leaky planted study: the likelihood-ratio attack beats chance at low FPR.
    assert row["tpr_at_0.01"] > 0.05


def test_no_leakage_gives_chance_and_zero_epsilon_mostly():
    attacked = planted_attack(shift=0.0, R=20, m_in=100, m_out=100)
    scores = attack_scores(attacked, "mse")
    pooled = pooled_summary(scores, [0.01], n_boot=200, base_seed=0).set_index("attack")
    assert pooled.loc["lr", "auc_lo"] < 0.5 < pooled.loc["lr", "auc_hi"]
    per = record_privacy_table(attacked.records, *scores["lr"], 1e-5, 0.95)
    # Each record's bound holds at 95% per threshold; the best of ~200 thresholds is rarely but sometimes > 0.
    assert np.mean(per["eps_lower"] > 0) < 0.5


def test_epsilon_lower_bound_planted():
    """Perfect separation of 100 + 100 models: ε >= log((TPR_lo − δ)/FPR_hi) with CP bounds at 0 and 100 of 100."""
    pos, neg = np.arange(100.0) + 1000, np.arange(100.0)
    res = epsilon_lower_bound(pos, neg, 1e-5, 0.95)
    tpr_lo = stats.beta.ppf(0.025, 100, 1)
    fpr_hi = stats.beta.ppf(0.975, 1, 100)
    assert res["eps_lower"] == pytest.approx(np.log((tpr_lo - 1e-5) / fpr_hi))
    assert (res["eps_tp"], res["eps_fp"]) == (100, 0)
    # The attack keeps its orientation: scores that rank members lowest give no bound.
    assert epsilon_lower_bound(-pos, -neg, 1e-5, 0.95)["eps_lower"] == 0.0
    # Every member caught, half the non-members too: the second inequality, log((1 − FPR_hi − δ)/FNR_hi), wins.
    half = np.r_[np.arange(50.0), np.arange(50.0) + 2000]
    res = epsilon_lower_bound(pos, half, 1e-5, 0.95)
    fpr_hi, fnr_hi = stats.beta.ppf(0.975, 51, 50), 1 - tpr_lo
    assert res["eps_lower"] == pytest.approx(np.log((1 - fpr_hi - 1e-5) / fnr_hi))
    assert (res["eps_tp"], res["eps_fp"]) == (100, 50)
    with pytest.raises(LoodInputError, match="privacy.confidence"):
        epsilon_lower_bound(pos, neg, 1e-5, 1.5)


def test_privacy_tables_shapes():
    attacked = planted_attack(shift=2.0, R=5, m_in=20, m_out=20, C=3)
    privacy = PrivacySettings.from_schema(fprs=(0.01,), roc_points=20, bootstrap=50)
    pooled, roc, per = privacy_tables(attacked, "mse", privacy, 0)
    assert list(per["record"]) == list(range(5))
    assert per["fpr_lowest"].iloc[0] == 0.05
    ceiling = np.log((stats.beta.ppf(0.025, 20, 1) - 1e-5) / stats.beta.ppf(0.975, 1, 20))
    assert per["eps_ceiling"].tolist() == pytest.approx([ceiling] * 5)
    assert (per["eps_lower"] <= per["eps_ceiling"] + 1e-12).all()
    assert set(roc["attack"]) == {"lr", "lira_offline", "loss"}
    assert roc.groupby("attack")["tpr"].apply(lambda t: np.all(np.diff(t.to_numpy()) >= 0)).all()
    assert pooled_roc_table({"x": (np.ones((1, 3)), np.zeros((1, 4)))}, [0.25, 1.0])["tpr"].tolist() == [1.0, 1.0]
