"""Correlation summaries and paired differences against scipy and a hand-written bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from lood import seeds, stats
from lood.stats import correlation, paired_difference, signed_sqrt


def test_correlation_matches_scipy_and_hand_bootstrap():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 0.6 * x + rng.normal(size=40)
    c = correlation(x, y, n_boot=500, base_seed=3, key=1)
    assert np.isclose(c["pearson_r"], st.pearsonr(x, y).statistic)
    assert np.isclose(c["spearman_p"], st.spearmanr(x, y).pvalue)
    idx = seeds.rng(3, "bootstrap", 1).integers(0, 40, size=(500, 40))
    boot = [st.pearsonr(x[i], y[i]).statistic for i in idx]
    assert np.allclose([c["pearson_lo"], c["pearson_hi"]], np.percentile(boot, [2.5, 97.5]))
    assert c["pearson_lo"] < c["pearson_r"] < c["pearson_hi"]


def test_correlation_drops_nan_and_handles_constant():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    c = correlation(x, 2 * x, n_boot=100, base_seed=0)
    assert c["n"] == 4 and np.isclose(c["pearson_r"], 1.0)
    assert np.isnan(correlation(np.ones(5), np.arange(5.0), 100, 0)["pearson_r"])


def test_paired_difference_known_answers():
    rng = np.random.default_rng(1)
    t = rng.normal(size=60)
    a = t + 0.3 * rng.normal(size=60)
    same = paired_difference(t, a, a.copy(), 300, 0, 5)
    assert same["spearman_diff"] == 0 and same["spearman_diff_lo"] == 0 and same["spearman_diff_hi"] == 0
    assert same["pearson_diff_share_le0"] == 1.0
    # a perfect estimator against a noisy one: r_a = 1 in every resample, so the difference is 1 - r_b
    b = t + 2.0 * rng.normal(size=60)
    d = paired_difference(t, t.copy(), b, 300, 0, 5)
    assert d["pearson_diff"] == pytest.approx(1 - st.pearsonr(b, t).statistic)
    idx = seeds.rng(0, "bootstrap", 5).integers(0, 60, size=(300, 60))
    boot = np.array([1 - st.pearsonr(b[i], t[i]).statistic for i in idx])
    assert [d["pearson_diff_lo"], d["pearson_diff_hi"]] == pytest.approx(np.percentile(boot, [2.5, 97.5]))
    assert d["pearson_diff_lo"] > 0 and d["spearman_diff_lo"] > 0


def test_paired_difference_ci_covers_the_population_difference():
    """Population: a = t + e_a, b = t + e_b with known Pearson correlations 0.8 and 0.5 (difference 0.3)."""
    rng = np.random.default_rng(2)
    ra, rb = 0.8, 0.5
    sa, sb = np.sqrt(1 / ra**2 - 1), np.sqrt(1 / rb**2 - 1)
    covered, points, widths = 0, [], []
    reps, n = 150, 150
    for k in range(reps):
        t = rng.normal(size=n)
        d = paired_difference(t, t + sa * rng.normal(size=n), t + sb * rng.normal(size=n), 300, k, 0)
        covered += d["pearson_diff_lo"] <= ra - rb <= d["pearson_diff_hi"]
        points.append(d["pearson_diff"])
        widths.append(d["pearson_diff_hi"] - d["pearson_diff_lo"])
    assert covered / reps >= 0.88  # nominal 0.95; percentile intervals undercover slightly at this n
    # the interval's width matches the spread of the estimate over repeated datasets (2 x 1.96 sd)
    assert np.mean(widths) == pytest.approx(2 * 1.96 * np.std(points), rel=0.2)


def test_signed_sqrt_keeps_the_order():
    x = np.array([-4.0, -0.25, 0.0, 0.25, 9.0])
    np.testing.assert_allclose(signed_sqrt(x), [-2.0, -0.5, 0.0, 0.5, 3.0])


# ----------------------------------------------------------------------------- replication and disattenuation


def _halves_study(rng, n: int, repeats: int, rho: float, noise_var: float, m: int = 40):
    """Planted: truth t ~ N(0, 1); x with Pearson rho(x, t) = rho; per record m model values t + N(0, noise_var);
    each repeat splits the models into two halves and takes their means. Reliability of a half:
    1 / (1 + noise_var / (m / 2))."""
    t = rng.standard_normal(n)
    x = rho * t + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    models = t[:, None] + np.sqrt(noise_var) * rng.standard_normal((n, m))
    reps = np.empty((repeats, 2, n))
    for k in range(repeats):
        p = rng.permutation(m)
        reps[k, 0], reps[k, 1] = models[:, p[: m // 2]].mean(axis=1), models[:, p[m // 2 :]].mean(axis=1)
    return x, reps


def test_disattenuated_correlation_recovers_the_planted_one():
    rng = np.random.default_rng(7)
    x, reps = _halves_study(rng, 3000, 4, 0.7, 20.0)  # a half's reliability 1 / (1 + 1) = 0.5
    out = stats.replication_bootstrap(x, reps, 20, 1, 0)
    assert out["pearson_replication"] == pytest.approx(0.5, abs=0.03)
    assert out["pearson_half"] == pytest.approx(0.7 * np.sqrt(0.5), abs=0.03)
    assert out["pearson_disattenuated"] == pytest.approx(0.7, abs=0.04)
    assert out["pearson_half_minus_rep"] == pytest.approx(out["pearson_half"] - out["pearson_replication"])
    assert stats.disattenuated(0.35, 0.49) == pytest.approx(0.5) and np.isnan(stats.disattenuated(0.3, -0.1))


def test_replication_bootstrap_points_are_the_mean_correlations_and_its_cis_cover():
    """Point values against scipy; over 60 planted studies of 60 records the 95% CIs of the disattenuated rho
    and of rho(x, half) - rho(half, half) cover their population values (0.7 and 0.7 sqrt(0.5) - 0.5)."""
    rng = np.random.default_rng(8)
    x, reps = _halves_study(rng, 50, 3, 0.7, 20.0)
    out = stats.replication_bootstrap(x, reps, 100, 1, 0)
    want_half = np.mean([st.spearmanr(x, reps[k, h]).statistic for k in range(3) for h in (0, 1)])
    want_rep = np.mean([st.spearmanr(reps[k, 0], reps[k, 1]).statistic for k in range(3)])
    assert out["spearman_half"] == pytest.approx(want_half) and out["spearman_replication"] == pytest.approx(want_rep)
    cover_dis, cover_diff = [], []
    for k in range(60):
        x, reps = _halves_study(rng, 60, 3, 0.7, 20.0)
        out = stats.replication_bootstrap(x, reps, 300, 1, k)
        cover_dis.append(out["pearson_disattenuated_lo"] <= 0.7 <= out["pearson_disattenuated_hi"])
        diff = 0.7 * np.sqrt(0.5) - 0.5
        cover_diff.append(out["pearson_half_minus_rep_lo"] <= diff <= out["pearson_half_minus_rep_hi"])
    assert np.mean(cover_dis) >= 0.85 and np.mean(cover_diff) >= 0.85


def test_halves_array_lays_out_repeats_and_halves():
    halves = pd.DataFrame(
        {
            "repeat": [0, 0, 0, 0, 1, 1, 1, 1],
            "half": [0, 0, 1, 1, 0, 0, 1, 1],
            "record": [5, 9] * 4,
            "auc": np.arange(8.0),
        }
    )
    x, reps = stats.halves_array(pd.Series({9: 2.0, 5: 1.0}), halves, "auc")
    np.testing.assert_array_equal(x, [1.0, 2.0])
    np.testing.assert_array_equal(reps, [[[0, 1], [2, 3]], [[4, 5], [6, 7]]])
