"""The model level of the two-level bootstrap against explicit resamples, scipy, and planted model noise."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import multivariate_normal, spearmanr

from lood.empirical import mia
from lood.empirical import model_bootstrap as mb
from lood.stats import correlation, two_level_correlation


def _ridged_gaussian(ref: np.ndarray):
    cov = np.cov(ref, rowvar=False, ddof=1)
    cov = cov + (mia.RIDGE * np.trace(cov) / len(cov) + mia.RIDGE_FLOOR) * np.eye(len(cov))
    return multivariate_normal(ref.mean(axis=0), cov)


def test_cross_fitted_scores_against_scipy_leave_one_out_fits():
    rng = np.random.default_rng(0)
    inn, out = rng.normal(size=(9, 3)) + [1.0, 0.0, -0.5], rng.normal(size=(7, 3))
    s_in, s_out = mb.cross_fitted_scores(inn, out)
    for i in range(len(inn)):
        want = _ridged_gaussian(np.delete(inn, i, axis=0)).logpdf(inn[i]) - _ridged_gaussian(out).logpdf(inn[i])
        assert s_in[i] == pytest.approx(want, rel=1e-10)
    for j in range(len(out)):
        want = _ridged_gaussian(inn).logpdf(out[j]) - _ridged_gaussian(np.delete(out, j, axis=0)).logpdf(out[j])
        assert s_out[j] == pytest.approx(want, rel=1e-10)


def _counts(idx: np.ndarray, m: int) -> np.ndarray:
    return np.apply_along_axis(np.bincount, -1, idx, minlength=m).astype(float)


def test_resampled_auc_and_diff_equal_the_attack_on_explicit_resamples():
    """cᵀWd / (Min Mout) and the weighted diff against mia.auc and mia.diff_unbiased on the resampled models."""
    rng = np.random.default_rng(1)
    R, m_in, m_out, B = 4, 8, 6, 5
    inn, out = rng.normal(size=(m_in, R, 2)), rng.normal(size=(R, m_out, 2))
    inn[:3] = inn[3]  # ties among the scores
    s = mb.model_scores(np.arange(R), inn, out)
    idx_in = rng.integers(0, m_in, (B, m_in))
    idx_out = rng.integers(0, m_out, (B, R, m_out))
    aucs = mb.resampled_aucs(s, _counts(idx_in, m_in), _counts(idx_out, m_out))
    diffs = mb.resampled_diffs(s, _counts(idx_in, m_in), _counts(idx_out, m_out))
    for b in range(B):
        for r in range(R):
            assert aucs[b, r] == pytest.approx(mia.auc(s.scores_in[r, idx_in[b]], s.scores_out[r, idx_out[b, r]]))
            want, _ = mia.diff_unbiased(inn[idx_in[b], r], out[r, idx_out[b, r]])
            assert diffs[b, r] == pytest.approx(want, rel=1e-9, abs=1e-12)
    full = mb.full_sample_auc(s)
    assert full == pytest.approx([mia.auc(a, b) for a, b in zip(s.scores_in, s.scores_out, strict=True)])


def _study(rng, delta: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """One record set's models: 1-D logits, in ~ N(delta, 1), out ~ N(0, 1) (a second output fixed at 0 plus noise)."""
    R = len(delta)
    inn = np.stack([rng.normal(delta, 1.0, (m, R)), 1e-3 * rng.normal(size=(m, R))], axis=-1)
    out = np.stack([rng.normal(0.0, 1.0, (R, m)), 1e-3 * rng.normal(size=(R, m))], axis=-1)
    return inn, out


def test_model_bootstrap_sd_matches_the_spread_over_independent_model_sets():
    """Planted: one record, 30 + 30 models; the bootstrap SD of its AUC is what fresh model sets give."""
    rng = np.random.default_rng(2)
    delta = np.array([0.8])
    fresh = []
    for _ in range(150):
        inn, out = _study(rng, delta, 30)
        fresh.append(mb.full_sample_auc(mb.model_scores([0], inn, out))[0])
    inn, out = _study(rng, delta, 30)
    boot = mb.model_resampled_measures(mb.model_scores([0], inn, out), 2000, 3)["auc_shift"][:, 0]
    assert boot.std() == pytest.approx(np.std(fresh), rel=0.3)


def test_two_level_interval_is_wider_and_covers_with_planted_model_noise():
    """Planted: records with leakage delta (the predictor is delta itself) and noisy attacks from 24 + 24
    models. Over fresh studies (fresh records and models), the two-level 95% CI of Spearman's rho must be
    wider than the records-only CI and cover the expected rho of a study in >= 90% of studies."""
    rng = np.random.default_rng(4)
    R, M, B = 25, 24, 400

    def one(seed_key: int, with_ci: bool):
        delta = rng.uniform(0.0, 1.2, R)
        inn, out = _study(rng, delta, M)
        s = mb.model_scores(np.arange(R), inn, out)
        auc = mb.full_sample_auc(s)
        rho = spearmanr(delta, auc).statistic
        if not with_ci:
            return rho
        y_models = auc[None] + mb.model_resampled_measures(s, B, seed_key)["auc_shift"]
        c = correlation(delta, auc, B, seed_key)
        t = two_level_correlation(delta, auc, y_models, B, seed_key, 0)
        return rho, (c["spearman_lo"], c["spearman_hi"]), (t["two_level_spearman_lo"], t["two_level_spearman_hi"])

    expected = np.mean([one(k, False) for k in range(200)])
    studies = [one(k, True) for k in range(60)]
    wider = np.mean([(t[1] - t[0]) > (c[1] - c[0]) for _, c, t in studies])
    covers = np.mean([t[0] <= expected <= t[1] for _, _, t in studies])
    assert wider >= 0.9
    assert covers >= 0.9
