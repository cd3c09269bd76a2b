"""The membership-inference attack against scikit-learn / scipy computations written out here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from scipy.stats import multivariate_normal
from sklearn.metrics import roc_auc_score

from lood import seeds
from lood.empirical import mia
from lood.errors import LoodInputError
from lood.stats import replication


def sk_auc(pos, neg) -> float:
    return roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg])


def test_auc_matches_sklearn_with_ties():
    pos, neg = np.array([0.1, 0.4, 0.4, 0.8]), np.array([0.4, 0.2, 0.1, 0.9, 0.4])
    assert mia.auc(pos, neg) == pytest.approx(sk_auc(pos, neg), abs=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(20):
        pos, neg = rng.integers(0, 5, rng.integers(1, 30)), rng.integers(0, 6, rng.integers(1, 30))
        assert mia.auc(pos, neg) == pytest.approx(sk_auc(pos, neg), abs=1e-12)
    batch_pos, batch_neg = rng.normal(size=(4, 10)), rng.normal(size=(4, 7))
    np.testing.assert_allclose(
        mia.auc(batch_pos, batch_neg), [sk_auc(p, n) for p, n in zip(batch_pos, batch_neg, strict=True)]
    )
    assert mia.auc([1.0, 1.0], [1.0]) == 0.5


def test_half_splits_partition_the_models():
    ref_in, held_in, ref_out, held_out = mia.half_splits(11, 8, 3, seed=5)
    assert ref_in.shape == (3, 5) and held_in.shape == (3, 6) and ref_out.shape == (3, 4) and held_out.shape == (3, 4)
    for s in range(3):
        assert sorted(np.r_[ref_in[s], held_in[s]]) == list(range(11))
        assert sorted(np.r_[ref_out[s], held_out[s]]) == list(range(8))
    assert not np.array_equal(ref_in[0], ref_in[1])


def test_lira_confidence_is_logit_of_true_class_probability():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, (50, 4))
    labels = rng.integers(0, 4, 50)
    p = softmax(z, axis=1)[np.arange(50), labels]
    np.testing.assert_allclose(mia.lira_confidence(z, labels), np.log(p / (1 - p)), rtol=1e-9)
    extreme = mia.lira_confidence(np.array([[800.0, -800.0], [-800.0, 800.0]]), 0)
    np.testing.assert_allclose(extreme, [1600.0, -1600.0])


def test_identical_distributions_give_chance_and_separated_give_one():
    rng = np.random.default_rng(2)
    same = mia.mia_record(rng.normal(size=(100, 3)), rng.normal(size=(100, 3)), 0, 50, seed=3)
    assert abs(same["auc"] - 0.5) < 0.05 and abs(same["auc_lira"] - 0.5) < 0.05
    assert 0.0 < same["auc_std"] < 0.15
    far = mia.mia_record(rng.normal(size=(100, 3)) + [6.0, 0, 0], rng.normal(size=(100, 3)), 0, 50, seed=3)
    assert far["auc"] > 0.99 and far["auc_lira"] > 0.99
    # covariance-only difference: the full-covariance attack sees it, the mean difference does not
    a = rng.normal(size=(100, 2)) * [3.0, 0.3]
    b = rng.normal(size=(100, 2)) * [0.3, 3.0]
    cov = mia.mia_record(a, b, 0, 50, seed=3)
    assert cov["auc"] > 0.95 and cov["diff"] < 0.5


def test_splits_reproduced_with_scipy():
    rng = np.random.default_rng(4)
    # unequal halves (60 vs 5 reference models) make the covariance's ddof visible in the ranks
    in_logits = rng.normal(size=(120, 3)) @ rng.normal(size=(3, 3)) + [0.5, -0.2, 0.0]
    out_logits = rng.normal(size=(10, 3)) @ rng.normal(size=(3, 3))
    label, splits = 1, 3
    res = mia.mia_record(in_logits, out_logits, label, splits=splits, seed=7)

    def fitted(samples):
        cov = np.cov(samples, rowvar=False).reshape(samples.shape[1], samples.shape[1])
        cov = cov + (mia.RIDGE * np.trace(cov) / len(cov) + mia.RIDGE_FLOOR) * np.eye(len(cov))
        return multivariate_normal(samples.mean(axis=0), cov)

    def phi(z):
        p = softmax(z, axis=1)[:, label]
        return np.log(p / (1 - p))[:, None]

    aucs, liras = [], []
    for ref_in, held_in, ref_out, held_out in zip(*mia.half_splits(120, 10, splits, seed=7), strict=True):
        for feat_in, feat_out, out in ((in_logits, out_logits, aucs), (phi(in_logits), phi(out_logits), liras)):
            g_in, g_out = fitted(feat_in[ref_in]), fitted(feat_out[ref_out])
            score = lambda x: np.atleast_1d(g_in.logpdf(x) - g_out.logpdf(x))  # noqa: E731
            out.append(sk_auc(score(feat_in[held_in]), score(feat_out[held_out])))
    assert res["auc"] == pytest.approx(np.mean(aucs), abs=1e-12)
    assert res["auc_std"] == pytest.approx(np.std(aucs), abs=1e-12)
    assert res["auc_lira"] == pytest.approx(np.mean(liras), abs=1e-12)
    raw = np.mean((in_logits.mean(0) - out_logits.mean(0)) ** 2)
    assert res["diff_raw"] == pytest.approx(raw, rel=1e-12)
    floor = np.mean(np.var(in_logits, axis=0, ddof=1) / 120 + np.var(out_logits, axis=0, ddof=1) / 10)
    assert res["diff"] == pytest.approx(raw - floor, rel=1e-12)


def test_singular_covariance_is_handled_by_the_ridge():
    rng = np.random.default_rng(8)
    first = rng.normal(size=(40, 1))
    in_logits, out_logits = (
        np.c_[first[:20] + 3, -first[:20] - 3],
        np.c_[first[20:], -first[20:]],
    )  # outputs sum to 0 exactly
    res = mia.mia_record(in_logits, out_logits, 0, 10, seed=0)
    assert res["auc"] > 0.9 and np.isfinite(res["auc_std"])


def test_unbiased_diff_averages_to_the_true_difference_and_the_raw_one_does_not():
    """Simulated logits with a known Δ (also Δ = 0): E[diff] = mean_c Δ_c², E[diff_raw] adds the noise floor."""
    rng = np.random.default_rng(12)
    reps, n_in, n_out = 20000, 30, 12
    sd_in, sd_out = np.array([1.0, 0.5, 2.0]), np.array([0.7, 1.5, 1.0])
    floor = np.mean(sd_in**2 / n_in + sd_out**2 / n_out)
    for delta in (np.zeros(3), np.array([0.3, -0.1, 0.0]), np.array([1.0, 2.0, -1.0])):
        in_l = rng.normal(delta, sd_in, (reps, n_in, 3))
        out_l = rng.normal(0.0, sd_out, (reps, n_out, 3))
        diff, raw = mia.diff_unbiased(in_l, out_l)
        truth, se = np.mean(delta**2), diff.std() / np.sqrt(reps)
        assert abs(diff.mean() - truth) < 4 * se
        assert abs(raw.mean() - (truth + floor)) < 4 * raw.std() / np.sqrt(reps)
        assert raw.mean() - truth > 10 * se  # the raw estimate is biased upward, by far more than its noise
    # Δ = 0: about half the unbiased estimates fall at or below 0, none of the raw ones do
    diff0, raw0 = mia.diff_unbiased(rng.normal(0, 1, (2000, 30, 2)), rng.normal(0, 1, (2000, 30, 2)))
    assert 0.4 < np.mean(diff0 <= 0) < 0.8 and np.all(raw0 > 0)


def test_auc_p_value_is_valid_and_conservative_under_no_leakage():
    # the null variance of a Mann-Whitney AUC, against permutations of continuous scores
    rng = np.random.default_rng(13)
    scores = rng.normal(size=(20000, 50 + 30))
    null = mia.auc(scores[:, :50], scores[:, 50:])
    v0 = (50 + 30 + 1) / (12 * 50 * 30)
    assert null.var() == pytest.approx(v0, rel=0.05)
    assert mia.auc_p_value(0.5, 50, 30) == pytest.approx(0.5)
    assert mia.auc_p_value(0.5 + 1.6448536 * np.sqrt(v0), 50, 30) == pytest.approx(0.05, rel=1e-4)
    # identical in- and out-distributions: rejections at 5% are at most 5% (up to Monte Carlo error)
    ps = np.array(
        [mia.mia_record(rng.normal(size=(20, 2)), rng.normal(size=(20, 2)), 0, 10, seed=s)["auc_p"] for s in range(400)]
    )
    assert np.mean(ps < 0.05) <= 0.05 + 2.5 * np.sqrt(0.05 * 0.95 / 400)
    strong = mia.mia_record(rng.normal(size=(40, 2)) + [3.0, 0.0], rng.normal(size=(40, 2)), 0, 10, seed=0)
    assert strong["auc_p"] < 1e-6


def test_diff_std_is_the_standard_error_of_the_difference():
    rng = np.random.default_rng(5)
    a, b = rng.normal([2.0, -1.0], 1.0, (100, 2)), rng.normal(0.0, [1.0, 2.0], (40, 2))
    res = mia.mia_record(a, b, 0, 400, seed=1)
    # delta method for (delta_1^2 + delta_2^2) / 2, gradient delta_c, independent outputs
    delta = a.mean(0) - b.mean(0)
    var_delta = a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b)
    assert res["diff_std"] == pytest.approx(np.sqrt(np.sum(delta**2 * var_delta)), rel=0.15)


def test_mia_table_and_landscape_use_per_record_seeds():
    rng = np.random.default_rng(6)
    records, labels, t = [3, 8], [0, 1], [-1.0, 0.0, 1.0]
    in_p = rng.normal(size=(10, 2, 3, 2))
    out_p = rng.normal(size=(2, 12, 3, 2)) + 0.5
    table = mia.mia_table(mia.AttackedRecords(records, labels, in_p[:, :, 1], out_p[:, :, 1]), 5, base_seed=11)
    assert list(table.columns) == ["record", "auc", "auc_std", "diff", "diff_std", "auc_lira", "auc_p", "diff_raw"]
    assert table["record"].tolist() == records
    for j, r in enumerate(records):
        expected = mia.mia_record(in_p[:, j, 1], out_p[j, :, 1], labels[j], 5, seeds.int_seed(11, "mia", r))
        assert table.iloc[j][list(expected)].to_dict() == pytest.approx(expected)
    land = mia.mia_landscape_table(records, labels, t, in_p, out_p, 5, base_seed=11)
    assert list(land.columns) == ["record", "t", "auc", "auc_std", "diff", "auc_p", "diff_raw"]
    assert len(land) == 6
    at_zero = land[land["t"] == 0.0].reset_index(drop=True)
    cols = ["auc", "auc_std", "auc_p", "diff", "diff_raw"]
    np.testing.assert_allclose(at_zero[cols], table[cols])
    row = land[(land["record"] == 8) & (land["t"] == -1.0)].iloc[0]
    assert row["auc"] == pytest.approx(
        mia.mia_record(in_p[:, 1, 0], out_p[1, :, 0], 1, 5, seeds.int_seed(11, "mia", 8))["auc"]
    )


def test_bad_inputs_are_input_errors():
    ok = np.zeros((10, 2))
    with pytest.raises(LoodInputError, match="at least 4"):
        mia.mia_record(ok[:3], ok, 0, 5, 0)
    with pytest.raises(LoodInputError, match="diverged"):
        mia.mia_record(np.full((10, 2), np.nan), ok, 0, 5, 0)
    with pytest.raises(LoodInputError, match="equal classes"):
        mia.mia_record(ok, np.zeros((10, 3)), 0, 5, 0)
    with pytest.raises(LoodInputError, match="label"):
        mia.mia_record(ok, ok, 2, 5, 0)
    with pytest.raises(LoodInputError):
        mia.mia_table(mia.AttackedRecords([1, 2], [0, 1], np.zeros((10, 3, 2)), np.zeros((2, 10, 2))), 5, 0)


# ----------------------------------------------------------------------------- joining the training jobs' logits


def test_half_attacks_are_two_disjoint_replications():
    """Each repeat attacks two disjoint halves of the models; each half equals mia_table on those models."""
    rng = np.random.default_rng(3)
    R, M = 6, 12
    inn, out = rng.standard_normal((M, R, 2)), rng.standard_normal((R, M, 2))
    inn[..., 0] += np.linspace(0, 2, R)
    records, labels = np.arange(10, 10 + R), np.zeros(R, dtype=int)
    halves = mia.half_attacks(mia.AttackedRecords(records, labels, inn, out), 10, 5, 3)
    assert list(halves.columns) == mia.HALVES_COLUMNS and len(halves) == 3 * 2 * R
    g = seeds.rng(5, "mia_halves", 1)
    p_in, p_out = g.permutation(M), g.permutation(M)
    want = mia.mia_table(mia.AttackedRecords(records, labels, inn[p_in[6:]], out[:, p_out[6:]]), 10, 5)
    got = halves[(halves["repeat"] == 1) & (halves["half"] == 1)]
    np.testing.assert_array_equal(got["auc"], want["auc"])
    np.testing.assert_array_equal(got["diff"], want["diff"])
    assert mia.half_attacks(
        mia.AttackedRecords(records, labels, inn[:6], out[:, :6]), 10, 5, 3
    ).empty  # halves of 3: no attack
    with pytest.raises(LoodInputError, match="replication_repeats"):
        mia.half_attacks(mia.AttackedRecords(records, labels, inn, out), 10, 5, 0)


def test_the_true_leakage_predicts_the_attack_better_than_its_replication():
    """Planted answer: with the records' true leakage as the predictor, replication() must rank it above
    the agreement between two halves of the attack (each half is noisy, the truth is not); a predictor
    that is pure noise must come out near 0 while the replication stays where it was."""
    R, M = 40, 60
    shift = np.linspace(0.0, 1.2, R)
    rng = np.random.default_rng(11)
    out = rng.standard_normal((R, M, 2))
    inn = rng.standard_normal((M, R, 2))
    inn[..., 0] += shift
    records, labels = np.arange(R), np.zeros(R, dtype=int)
    halves = mia.half_attacks(mia.AttackedRecords(records, labels, inn, out), 10, 11, 4)
    truth = replication(pd.Series(shift, index=records), halves, "auc")
    noise = replication(pd.Series(rng.standard_normal(R), index=records), halves, "auc")
    assert truth["spearman_half"] > truth["spearman_replication"] > 0.3
    assert abs(noise["spearman_half"]) < 0.2 and noise["spearman_replication"] == truth["spearman_replication"]
