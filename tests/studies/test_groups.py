"""Leave-group-out (lood.studies.groups) against refits without G, a closed form for duplicates, and a direct sort."""

from __future__ import annotations

import numpy as np
import pytest

from lood.analytic import tables
from lood.analytic.divergence import lood_at_records
from lood.analytic.gp import fit_gp, targets
from lood.analytic.kernel import nngp_kernel
from lood.errors import LoodInputError
from lood.settings import Arch
from lood.studies.groups import (
    append_records,
    check_group,
    duplicate_table,
    group_lood,
    group_posteriors,
    nearest_same_label,
    neighbour_table,
    with_copies,
)

from reference import rel_err

RELU = Arch(depth=2, width=64, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
BS = 2048
SIGMA2 = 0.1


def refit_posterior(K_QS, K_QQ, K_SS, Y_S, sigma2):
    """Posterior from scratch on the training set S (dense solve, nothing shared with F's factorisation)."""
    A = K_SS + sigma2 * np.eye(len(K_SS))
    return K_QS @ np.linalg.solve(A, Y_S), K_QQ - K_QS @ np.linalg.solve(A, K_QS.T)


def gauss_kl(mD, SD, mF, SF):
    """KL(N(mD, SD) || N(mF, SF)) summed over the mean's columns (textbook trace/logdet form)."""
    q, C = mD.shape
    SFi = np.linalg.inv(SF)
    diff = mF - mD
    return C / 2 * (np.trace(SFi @ SD) - q + np.linalg.slogdet(SF)[1] - np.linalg.slogdet(SD)[1]) + 0.5 * np.sum(
        diff * (SFi @ diff)
    )


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.random((40, 6))
    y = rng.integers(0, 3, 40)
    K = nngp_kernel(X, None, RELU, BS)
    return X, y, K, fit_gp(K, targets(y, None), SIGMA2)


GROUPS = {1: [7], 2: [3, 30], 8: [0, 4, 9, 13, 21, 22, 35, 39]}


@pytest.mark.parametrize("k", [1, 2, 8])
def test_group_posteriors_match_refit_without_the_group(data, k):
    X, y, K, fit = data
    G = np.array(GROUPS[k])
    keep = np.setdiff1d(np.arange(len(X)), G)
    Y = targets(y, None)
    rng = np.random.default_rng(k)
    for Q in [rng.random((5, 6)), X[G], np.vstack([X[G[:1]], rng.random((2, 6))])]:
        K_QF, K_QQ = nngp_kernel(Q, X, RELU, BS), nngp_kernel(Q, None, RELU, BS)
        res = group_posteriors(fit, G, K_QF, K_QQ)
        mD, cD = refit_posterior(K_QF[:, keep], K_QQ, K[np.ix_(keep, keep)], Y[keep], SIGMA2)
        mF, cF = refit_posterior(K_QF, K_QQ, K, Y, SIGMA2)
        assert rel_err(res["mean_D"], mD) <= 1e-8 and rel_err(res["cov_D"], cD) <= 1e-8
        assert rel_err(res["mean_F"], mF) <= 1e-8 and rel_err(res["cov_F"], cF) <= 1e-8


@pytest.mark.parametrize("k", [1, 2, 8])
def test_group_lood_at_the_group_matches_refit(data, k):
    X, y, K, fit = data
    G = np.array(GROUPS[k])
    keep = np.setdiff1d(np.arange(len(X)), G)
    Y = targets(y, None)
    res = group_lood(fit, G, joint=True)
    K_GG = K[np.ix_(G, G)]
    mD, cD = refit_posterior(K[np.ix_(G, keep)], K_GG, K[np.ix_(keep, keep)], Y[keep], SIGMA2)
    mF, cF = refit_posterior(K[G], K_GG, K, Y, SIGMA2)
    assert rel_err(res["mean_D"], mD) <= 1e-8 and rel_err(res["cov_D"], cD) <= 1e-8
    assert rel_err(res["mean_F"], mF) <= 1e-8 and rel_err(res["cov_F"], cF) <= 1e-8
    assert res["kl"] == pytest.approx(gauss_kl(mD, cD, mF, cF), rel=1e-8)
    assert res["mse"] == pytest.approx(0.5 * np.mean((mD - mF) ** 2), rel=1e-8)
    for j in range(k):  # each member as a single query
        kl_j = gauss_kl(mD[[j]], cD[np.ix_([j], [j])], mF[[j]], cF[np.ix_([j], [j])])
        assert res["kl_members"][j] == pytest.approx(kl_j, rel=1e-8)
        assert res["mse_members"][j] == pytest.approx(0.5 * np.mean((mD[j] - mF[j]) ** 2), rel=1e-8)
    if k == 1:  # the rank-one closed form of lood_at_records
        one = lood_at_records(fit, np.diag(K), G)
        assert res["kl"] == pytest.approx(one["kl"][0], rel=1e-8)
        assert res["kl_members"][0] == pytest.approx(one["kl"][0], rel=1e-8)
        assert res["mse"] == pytest.approx(one["mse"][0], rel=1e-8)
        assert rel_err(res["mean_D"][0], one["mean_D"][0]) <= 1e-8
        assert res["cov_D"][0, 0] == pytest.approx(one["var_D"][0], rel=1e-8)


def test_check_group_rejects_bad_groups():
    with pytest.raises(LoodInputError, match="twice"):
        check_group([1, 1], 5, "groups.records")
    with pytest.raises(LoodInputError, match=r"groups\.records.*out of range"):
        check_group([7], 5, "groups.records")
    with pytest.raises(LoodInputError, match="at least one"):
        check_group([], 5, "groups.records")


def test_append_records_equals_fitting_the_extended_kernel(data):
    X, y, K, fit = data
    rng = np.random.default_rng(0)
    X_new = np.vstack([rng.random((2, 6)), X[[5]]])  # two new inputs and a copy of record 5
    y_new = np.array([0, 2, y[5]])
    X_all = np.vstack([X, X_new])
    K_all = nngp_kernel(X_all, None, RELU, BS)
    ext = append_records(fit, K_all[40:, :40], K_all[40:, 40:], targets(y_new, 3))
    ref = fit_gp(K_all, targets(np.concatenate([y, y_new]), 3), SIGMA2)
    assert rel_err(ext.chol, ref.chol) <= 1e-10 and rel_err(ext.alpha, ref.alpha) <= 1e-10


@pytest.fixture(scope="module")
def prepared(data):
    X, y, _, _ = data
    return tables.prepare(X, y, RELU, SIGMA2, BS)


@pytest.mark.parametrize("m", [1, 2, 4, 8])
def test_duplicates_match_refit_and_the_sufficient_statistic(prepared, m):
    gp = prepared
    r = 11
    table = duplicate_table(gp, np.array([r]), [m], 2000, 0)
    kl, mse = table["kl"].iloc[0], table["mse"].iloc[0]
    Y = targets(gp.y, None)
    # Brute force: the kernel of F with m - 1 copies appended, refitted; D is F without the record.
    idx = np.concatenate([np.arange(40), np.full(m - 1, r)])
    K_m = nngp_kernel(gp.X[idx], None, RELU, BS)
    keep = np.arange(40) != r
    K = K_m[:40, :40]
    mF, cF = refit_posterior(K_m[[r]], K[np.ix_([r], [r])], K_m, Y[idx], SIGMA2)
    mD, cD = refit_posterior(K[np.ix_([r], keep)], K[np.ix_([r], [r])], K[np.ix_(keep, keep)], Y[keep], SIGMA2)
    assert kl == pytest.approx(gauss_kl(mD, cD, mF, cF), rel=1e-8)
    assert mse == pytest.approx(0.5 * np.mean((mD - mF) ** 2), rel=1e-8)
    # Closed form: m copies of one noisy observation are one observation with noise σ²/m, added to D.
    gain = cD[0, 0] / (cD[0, 0] + SIGMA2 / m)
    var_m, mean_m = cD[0, 0] * (1 - gain), mD[0] + gain * (Y[r] - mD[0])
    lam = cD[0, 0] / var_m
    closed = Y.shape[1] / 2 * (lam - 1 - np.log(lam)) + np.sum((mD[0] - mean_m) ** 2) / (2 * var_m)
    assert kl == pytest.approx(closed, rel=1e-8)
    if m == 1:
        assert kl == pytest.approx(lood_at_records(gp.fit, gp.K_diag, [r])["kl"][0], rel=1e-8)


def test_duplicates_leak_more_with_more_copies(prepared):
    table = duplicate_table(prepared, np.array([2, 11, 30]), [1, 2, 4, 8], 2000, 0)
    for _, rows in table.groupby("record"):
        assert np.all(np.diff(rows.sort_values("m")["kl"].to_numpy()) > 0)


def test_with_copies_rejects_m_below_one(prepared):
    with pytest.raises(LoodInputError, match="multiplicities"):
        with_copies(prepared, 3, 0)
    with pytest.raises(LoodInputError, match="multiplicities"):
        duplicate_table(prepared, np.array([3]), [1, 0], 100, 0)


def test_nearest_same_label_matches_sorting_all_records(data):
    X, y, _, _ = data
    for r in [0, 17]:
        G = nearest_same_label(X, y, r, 4)
        same = [i for i in range(len(X)) if y[i] == y[r] and i != r]
        ref = sorted(same, key=lambda i: (np.linalg.norm(X[i] - X[r]), i))[:3]
        assert G.tolist() == [r] + ref
    with pytest.raises(LoodInputError, match="neighbour_sizes"):
        nearest_same_label(X, y, 0, 40)


def test_neighbour_table_matches_refit(prepared, data):
    _, _, K, _ = data
    gp = prepared
    kinds = ("nearest", "farthest", "random_same", "random_any")
    table = neighbour_table(gp, np.array([5, 20]), [1, 3], kinds, 0, 500)
    assert table.groupby("kind").size().to_dict() == {k: 4 for k in kinds}
    Y = targets(gp.y, None)
    single = lood_at_records(gp.fit, gp.K_diag, np.arange(40))["kl"]
    for _, row in table.iterrows():
        G = np.array(list(map(int, row["members"].split())))
        keep = np.setdiff1d(np.arange(40), G)
        mD, cD = refit_posterior(K[np.ix_(G, keep)], K[np.ix_(G, G)], K[np.ix_(keep, keep)], Y[keep], SIGMA2)
        mF, cF = refit_posterior(K[G], K[np.ix_(G, G)], K, Y, SIGMA2)
        assert row["kl_group"] == pytest.approx(gauss_kl(mD, cD, mF, cF), rel=1e-8)
        assert row["kl_single_sum"] == pytest.approx(np.sum(single[G]), rel=1e-12)
        assert row["kl_group_at_record"] == pytest.approx(
            gauss_kl(mD[[0]], cD[np.ix_([0], [0])], mF[[0]], cF[np.ix_([0], [0])]), rel=1e-8
        )
        assert 0.5 <= row["auc_group_at_record"] <= 1.0
        if row["k"] == 1:
            assert row["ratio"] == pytest.approx(1.0, rel=1e-8)


def test_duplicate_summary_medians_and_group_figure(prepared, tmp_path):
    from lood.figures.group import duplicate_summary, group_figure
    from lood.figures.style import save_figure

    nngp = duplicate_table(prepared, np.array([2, 11, 30]), [1, 2, 4], 500, 0)
    mia = nngp[["record", "m"]].assign(
        auc=0.5 + 0.1 * np.log2(nngp["m"]) + 0.01 * nngp["record"], auc_std=0.02, diff=1.0
    )
    summary = duplicate_summary(nngp, mia)
    medians = summary[summary.record < 0].set_index("m")
    for m in (1, 2, 4):
        assert medians.loc[m, "kl"] == pytest.approx(np.median(nngp[nngp.m == m]["kl"]))
        assert medians.loc[m, "auc"] == pytest.approx(0.5 + 0.1 * np.log2(m) + 0.11)
    neighbours = neighbour_table(prepared, np.array([5, 20, 33]), [1, 2, 4], ("nearest", "farthest"), 0, 0)
    save_figure(group_figure(summary, neighbours), tmp_path / "g.png", tmp_path / "g.pdf")
    assert (tmp_path / "g.png").stat().st_size > 0


# ----------------------------------------------------------------------------- config and workflow


def test_schema_rejects_bad_group_and_canary_specs():
    import copy

    import yaml
    from snakemake.utils import validate
    from snakemake_interface_common.exceptions import WorkflowError

    from conftest import ROOT

    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    for section, key, value in [
        ("groups", "multiplicities", [1, 0]),
        ("groups", "duplicate_count", 0),
        ("groups", "neighbour_sizes", [2, 2]),
        ("canaries", "noise_count", -1),
        ("canaries", "max_fraction", 0.9),
        ("canaries", "planted", 3),
    ]:
        cfg = copy.deepcopy(base)
        cfg[section][key] = value
        with pytest.raises(WorkflowError) as err:
            validate(cfg, str(ROOT / "schemas" / "config.schema.yaml"))
        assert f"'{section}'" in str(err.value) and (f"'{key}'" in str(err.value) or "planted" in str(err.value))


def test_duplicate_records_must_be_studied_and_in_range():
    from lood.records import check_duplicate_records

    studied = np.array([3, 8, 20, 31])
    assert check_duplicate_records(None, 2, studied, 40).tolist() == [3, 8]
    assert check_duplicate_records([20, 3], 2, studied, 40).tolist() == [20, 3]
    with pytest.raises(LoodInputError, match=r"groups\.duplicate_records \[5\] are not studied"):
        check_duplicate_records([3, 5], 2, studied, 40)
    with pytest.raises(LoodInputError, match=r"groups\.duplicate_records \[40\] out of range"):
        check_duplicate_records([40], 2, studied, 40)


@pytest.mark.e2e
def test_group_and_canary_figures_end_to_end(tmp_path):
    import pandas as pd
    from PIL import Image

    from conftest import copy_workflow, snakemake

    wf = copy_workflow(tmp_path / "wf")
    configs = ["--configfile", "tests/configs/tiny.yaml", "tests/configs/tiny_group.yaml"]
    run = snakemake(wf, "--cores", "2", *configs, timeout=1200)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    res = wf / "results" / "relu"
    for name in ("group", "group_networks", "canary"):
        with Image.open(res / "figures" / f"{name}.png") as img:
            img.verify()
    dup = pd.read_csv(res / "figures" / "group.csv")
    assert sorted(dup[dup.record >= 0]["m"].unique()) == [1, 2] and dup["auc"].between(0, 1).all()
    canaries = pd.read_csv(res / "figures" / "canary.csv")
    assert sorted(canaries["kind"]) == ["flipped", "flipped", "noise", "noise_scaled"]
    assert (canaries["real_attacked"] == 3).all()
    canary_mia = pd.read_csv(res / "canary" / "mia.csv")
    assert (canary_mia["kind"] == "real").sum() == 3 and canary_mia["auc_lo"].le(canary_mia["auc"]).all()
    groups = pd.read_csv(res / "group" / "networks.csv")
    assert len(groups) == 2 * 2 * 2 and set(groups["kind"]) == {"nearest", "random_same"}
    neighbours = pd.read_csv(res / "group" / "neighbours.csv")
    assert set(neighbours["kind"]) == {"nearest", "farthest", "random_same", "random_any"}
    lood_all = pd.read_csv(res / "canary" / "nngp" / "lood_all.csv")
    assert len(lood_all) == 42 and (lood_all["kind"] != "real").sum() == 4
    # m = 1 is the experiment's own attack: the same models, splits and seed
    mia = pd.read_csv(res / "nn" / "mia.csv").set_index("record")
    ours = pd.read_csv(res / "group" / "mia_duplicates.csv").query("m == 1").set_index("record")
    assert np.allclose(ours["auc"], mia.loc[ours.index, "auc"])


@pytest.mark.e2e
def test_too_many_canaries_stop_the_run_with_one_message(tmp_path):
    from conftest import copy_workflow, snakemake

    wf = copy_workflow(tmp_path / "wf")
    (wf / "many.yaml").write_text("canaries: {noise_count: 5, flipped_count: 5}\n")  # + 1 norm-matched
    configs = ["--configfile", "tests/configs/tiny.yaml", "tests/configs/tiny_group.yaml", "many.yaml"]
    bad = snakemake(wf, "results/canary/data/dataset.npz", "--cores", "1", *configs)
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "noise_scaled_count + flipped_count = 11 exceeds canaries.max_fraction = 0.1" in out, out[-3000:]
