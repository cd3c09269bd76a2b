"""Control groups (lood.studies.groups.group_members), out-models without a group, and the group attack's summaries."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from lood.config import SCHEMA_PATH, fill_defaults
from lood.empirical.data_order import shared_order
from lood.empirical.mia import mia_record
from lood.empirical.train import Models, Outputs, train_models, training_set
from lood.empirical.training_job import TrainingJob
from lood.errors import LoodInputError
from lood.seeds import int_seed
from lood.settings import Arch, Training
from lood.studies.group_attack import (
    attack_interval,
    delong_variance,
    group_attack_table,
    group_summary,
    ratio_of_means,
)
from lood.studies.group_networks import group_out_arrays, train_without_groups
from lood.studies.groups import GROUP_KINDS, group_members

TINY_ARCH = Arch(depth=1, width=8, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    return rng.random((60, 5)), rng.integers(0, 3, 60)


@pytest.fixture(scope="module")
def tiny_training():
    cfg = {"training": {"n_in": 4, "n_out": 6, "epochs": 2, "batch_size": 8, "lr": 0.05}}
    fill_defaults(cfg, SCHEMA_PATH)
    return Training.from_config(cfg["training"])


# ----------------------------------------------------------------------------- control groups


def test_nearest_and_farthest_are_what_they_say(data):
    X, y = data
    for r in [0, 13, 42]:
        same = [i for i in range(60) if y[i] == y[r] and i != r]
        dist = {i: np.linalg.norm(X[i] - X[r]) for i in same}
        near = group_members(X, y, r, 5, "nearest", 0)
        far = group_members(X, y, r, 5, "farthest", 0)
        assert near[0] == r and far[0] == r
        assert near[1:].tolist() == sorted(same, key=lambda i: (dist[i], i))[:4]
        assert far[1:].tolist() == sorted(same, key=lambda i: (-dist[i], i))[:4]
        rest = [i for i in same if i not in far]
        assert min(dist[i] for i in far[1:]) >= max(dist[i] for i in rest)


def test_random_groups_are_seeded_and_drawn_from_their_pool(data):
    X, y = data
    draws_any = []
    for r in range(60):
        same = group_members(X, y, r, 6, "random_same", 3)
        assert np.all(y[same] == y[r]) and len(set(same.tolist())) == 6 and same[0] == r
        assert np.array_equal(same, group_members(X, y, r, 6, "random_same", 3))  # seeded
        anyl = group_members(X, y, r, 6, "random_any", 3)
        assert len(set(anyl.tolist())) == 6 and anyl[0] == r
        draws_any.append(anyl[1:])
    assert not np.array_equal(group_members(X, y, 0, 6, "random_same", 3), group_members(X, y, 0, 6, "random_same", 4))
    picked = np.concatenate(draws_any)
    other_label = np.mean([y[g] != y[r] for r, gs in enumerate(draws_any) for g in gs])
    # any label: about 2/3 of companions carry another label (3 balanced-ish classes), every record reachable
    assert 0.5 < other_label < 0.8
    assert len(np.unique(picked)) > 50
    with pytest.raises(LoodInputError, match="unknown group kind"):
        group_members(X, y, 0, 2, "closest", 0)
    with pytest.raises(LoodInputError, match="neighbour_sizes"):
        group_members(X, y, 0, 60, "random_same", 0)


# ----------------------------------------------------------------------------- out-models without a group


def test_group_exclusion_keeps_every_other_record_and_its_label(data):
    X, y = data
    G = np.array([7, 2, 40])
    Xt, yt = training_set(X, y, tuple(G))
    keep = [i for i in range(60) if i not in G]
    assert np.array_equal(Xt, X[keep]) and np.array_equal(yt, y[keep])


def test_shared_order_without_a_group_deletes_its_rows_and_keeps_the_sequence():
    full = shared_order(9, 20, 3)
    G = [4, 11, 0]
    reduced = shared_order(9, 20, 3, G)
    keep = [i for i in range(20) if i not in G]
    new_id = {old: j for j, old in enumerate(keep)}
    for e in range(3):
        assert reduced[e].tolist() == [new_id[int(i)] for i in full[e] if int(i) not in G]
    assert torch_equal(shared_order(9, 20, 3, 5), shared_order(9, 20, 3, [5]))


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_group_out_models_are_train_models_on_f_minus_g(data, tiny_training):
    X, y = data
    G = group_members(X, y, 9, 3, "farthest", 0)
    job = TrainingJob(X, y, TINY_ARCH, tiny_training, 3)
    logits = train_without_groups(job, [(1, 9, 3)], [G])[0]
    keep = ~np.isin(np.arange(60), G)
    seeds = [int_seed(3, "train_out_group", 1, 9, 3, m) for m in range(6)]
    ref = train_models(X[keep], y[keep], TINY_ARCH, tiny_training, Models(seeds), Outputs(X[G]), n_classes=3).logits
    assert logits.shape == (6, 3, 3) and np.array_equal(logits, ref)
    # aligned order: the in-models' order with G deleted, the same as training on F - G under that order
    aligned = replace(tiny_training, data_order="aligned")
    job = TrainingJob(X, y, TINY_ARCH, aligned, 3)
    got = train_without_groups(job, [(1, 9, 3)], [G])[0]
    order = int_seed(3, "train_in_order", 0)
    via_exclude = train_models(X, y, TINY_ARCH, aligned, Models(seeds, order, tuple(G)), Outputs(X[G])).logits
    assert np.array_equal(got, via_exclude)
    arrays = group_out_arrays(job, np.array([9, 20, 31]), "farthest", [2, 3], 2)
    assert arrays["records"].tolist() == [9, 20] and arrays["logits_k3"].shape == (2, 6, 3, 3)
    assert np.array_equal(arrays["members_k3"][0], G) and np.array_equal(arrays["logits_k3"][0], got)


# ----------------------------------------------------------------------------- attack intervals and summaries


def test_delong_variance_matches_monte_carlo():
    rng = np.random.default_rng(0)
    pos = rng.normal(0.6, 1.0, size=(4000, 40))
    neg = rng.normal(0.0, 1.0, size=(4000, 50))
    gt = (pos[:, :, None] > neg[:, None, :]).mean(axis=(1, 2))
    assert np.mean(delong_variance(pos, neg)) == pytest.approx(np.var(gt), rel=0.1)


def test_attack_interval_uses_the_single_attacks_splits_and_covers_it():
    rng = np.random.default_rng(1)
    in_l, out_l = rng.normal(0.3, 1, (40, 2)), rng.normal(0, 1, (40, 2))
    res = attack_interval(in_l, out_l, 20, 77)
    assert res["auc"] == pytest.approx(mia_record(in_l, out_l, 0, 20, 77)["auc"], abs=1e-12)
    assert res["lo"] < res["auc"] < res["hi"]


def test_group_attack_table_attacks_z_with_the_experiments_seed(data):
    rng = np.random.default_rng(2)
    in_train = rng.normal(size=(30, 60, 3))
    out = rng.normal(size=(30, 3, 3)) + 0.5
    table = group_attack_table("nearest", [(9, 3)], [np.array([9, 1, 2])], [out], in_train, data[1], 10, 4)
    ref = mia_record(in_train[:, 9], out[:, 0], int(data[1][9]), 10, int_seed(4, "mia", 9))
    assert table["auc"].iloc[0] == pytest.approx(ref["auc"]) and table["diff"].iloc[0] == pytest.approx(ref["diff"])
    with pytest.raises(LoodInputError, match="disagree"):
        group_attack_table("nearest", [(9, 3)], [np.array([1, 9, 2])], [out], in_train, data[1], 10, 4)


def test_ratio_of_means_and_summary_on_a_planted_answer():
    num, den = np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0])
    point, lo, hi = ratio_of_means(num, den, 200, 0, 1)
    assert point == pytest.approx(2.0) and lo == pytest.approx(2.0) and hi == pytest.approx(2.0)
    rng = np.random.default_rng(3)
    rows = []
    for kind, gain in (("nearest", 2.0), ("farthest", 1.0)):
        for r in range(12):
            for k in (2, 4):
                single = 0.55 + 0.02 * r
                rows.append(
                    {
                        "kind": kind,
                        "record": r,
                        "k": k,
                        "auc": 0.5 + gain * (single - 0.5),
                        "auc_lo": 0.0,
                        "auc_all_members": 0.6,
                        "auc_single": single,
                        "auc_nngp": 0.5 + gain * (single - 0.5) + rng.normal(0, 1e-4),
                        "auc_nngp_single": single,
                        "diff": gain * r + gain,
                        "diff_single": r + 1.0,
                        "mse_group_at_record": 3.0,
                        "mse_record": 1.5,
                        "kl_group": float(r),
                        "nngp_superadditivity": 1.2,
                    }
                )
    summary = group_summary(pd.DataFrame(rows), 200, 0).set_index(["kind", "k"])
    assert summary.loc[("nearest", 2), "net_excess_ratio"] == pytest.approx(2.0)
    assert summary.loc[("farthest", 0), "net_excess_ratio"] == pytest.approx(1.0)
    assert summary.loc[("nearest", 4), "net_diff_ratio"] == pytest.approx(2.0)
    assert summary.loc[("nearest", 0), "nngp_mse_ratio"] == pytest.approx(2.0)
    assert summary.loc[("nearest", 0), "groups"] == 24
    assert summary.loc[("nearest", 2), "rank_spearman"] > 0.99


def test_group_networks_figure_renders(tmp_path):
    from lood.figures.group_networks import group_networks_figure
    from lood.figures.style import save_figure

    rng = np.random.default_rng(4)
    table = pd.DataFrame(
        {
            "kind": np.repeat(list(GROUP_KINDS[:3]), 20),
            "k": np.tile([2, 4], 30),
            "auc": rng.uniform(0.5, 0.9, 60),
            "auc_nngp": rng.uniform(0.5, 0.9, 60),
        }
    ).assign(auc_lo=lambda d: d.auc - 0.05, auc_hi=lambda d: d.auc + 0.05)
    cols = ["net_excess_ratio", "nngp_excess_ratio", "net_diff_ratio", "nngp_mse_ratio", "rank_spearman"]
    summary = pd.DataFrame(
        [
            {"kind": kind, "k": k, **{c: 1.5 for c in cols}, **{f"{c}_lo": 1.0 for c in cols}}
            | {f"{c}_hi": 2.0 for c in cols}
            for kind in GROUP_KINDS[:3]
            for k in (2, 4, 0)
        ]
    )
    save_figure(group_networks_figure(summary, table), tmp_path / "g.png", tmp_path / "g.pdf")
    assert (tmp_path / "g.png").stat().st_size > 0


def test_duplicate_slopes_on_a_planted_answer_and_disagreement():
    from lood.figures.group import duplicate_slopes

    m = np.array([1, 2, 4, 8])
    rows = []
    for r, (net, gp) in enumerate([(0.05, 0.05), (0.0, 0.06)]):
        for j, mm in enumerate(m):
            auc = 0.55 + net * j
            rows.append(
                {
                    "record": r,
                    "m": mm,
                    "auc": auc,
                    "auc_lo": auc - 0.02,
                    "auc_hi": auc + 0.02,
                    "auc_nngp": 0.55 + gp * j,
                }
            )
    slopes = duplicate_slopes(pd.DataFrame(rows)).set_index("record")
    assert slopes.loc[0, "slope_net"] == pytest.approx(0.05) and slopes.loc[1, "slope_nngp"] == pytest.approx(0.06)
    # SE of an OLS slope with equal point SEs s: s / sqrt(sum (x - mean)^2), x = 0..3
    se = 0.02 / 1.959963984540054 / np.sqrt(5.0)
    assert slopes.loc[0, "slope_net_hi"] - slopes.loc[0, "slope_net"] == pytest.approx(1.959963984540054 * se)
    assert not slopes.loc[0, "disagree"] and slopes.loc[1, "disagree"]


def test_duplicate_mia_table_adds_intervals_on_the_same_splits():
    from lood.empirical.mia import AttackedRecords, mia_table
    from lood.studies.group_attack import duplicate_mia_table

    rng = np.random.default_rng(6)
    out = rng.normal(size=(2, 20, 3))
    in_by_m = {1: rng.normal(size=(20, 2, 3)), 2: rng.normal(size=(20, 2, 3)) + 1.0}
    table = duplicate_mia_table(np.array([4, 9]), np.array([0, 2]), in_by_m, out, 10, 3)
    for m in (1, 2):
        ref = mia_table(AttackedRecords([4, 9], [0, 2], in_by_m[m], out), 10, 3)
        got = table[table.m == m].reset_index(drop=True)
        assert np.allclose(got["auc"], ref["auc"])
        assert np.all((got["auc_lo"] <= got["auc"]) & (got["auc"] <= got["auc_hi"]))
