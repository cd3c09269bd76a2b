"""Canaries (lood.data.canaries), models on modified training sets (lood.studies.group_networks), and their settings."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from lood.config import SCHEMA_PATH, fill_defaults
from lood.data.canaries import check_canary_counts, make_canaries, nearest_records, reconstruction_table, record_kinds
from lood.empirical.train import Models, Outputs, train_models
from lood.empirical.training_job import TrainingJob
from lood.errors import LoodInputError
from lood.seeds import int_seed
from lood.settings import Arch, CanarySettings, GroupSettings, Training
from lood.studies.group_networks import copies_training_set, train_canary_out, train_with_copies

CANARIES = CanarySettings(
    run_by_default=False, noise_count=3, noise_scaled_count=0, flipped_count=2, max_fraction=0.1, real_count=4
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    return rng.random((60, 5)) * 0.8 + 0.1, rng.integers(0, 3, 60)


def test_make_canaries_plants_what_it_says(data):
    X, y = data
    studied = np.arange(0, 60, 3)
    X_aug, y_aug, table = make_canaries(X, y, studied, CANARIES, 7)
    assert X_aug.shape == (63, 5) and len(y_aug) == 63
    assert np.array_equal(X_aug[:60], X)  # F's inputs untouched
    noise = table[table.kind == "noise"]["record"].to_numpy()
    flipped = table[table.kind == "flipped"]["record"].to_numpy()
    assert noise.tolist() == [60, 61, 62] and len(flipped) == 2
    assert np.all((X_aug[noise] >= X.min()) & (X_aug[noise] <= X.max()))
    assert not np.intersect1d(flipped, studied).size
    assert np.all(y_aug[flipped] != y[flipped]) and np.all(y_aug[flipped] < 3)
    assert np.array_equal(table.set_index("record").loc[flipped, "original_label"], y[flipped])
    others = np.setdiff1d(np.arange(60), flipped)
    assert np.array_equal(y_aug[others], y[others])
    kinds = record_kinds(63, table)
    assert (kinds == "real").sum() == 58 and set(kinds[noise]) == {"noise"} and set(kinds[flipped]) == {"flipped"}
    again = make_canaries(X, y, studied, CANARIES, 7)
    assert np.array_equal(again[0], X_aug) and np.array_equal(again[1], y_aug)
    assert not np.array_equal(make_canaries(X, y, studied, CANARIES, 8)[0], X_aug)


def test_bad_canary_specs_are_rejected_naming_the_key():
    with pytest.raises(LoodInputError, match="max_fraction"):
        check_canary_counts(replace(CANARIES, noise_count=10), 60, 10)  # 12 > 10% of 60
    with pytest.raises(LoodInputError, match="flipped_count"):
        check_canary_counts(replace(CANARIES, max_fraction=0.5), 60, 59)
    with pytest.raises(LoodInputError, match="at least one canary"):
        replace(CANARIES, noise_count=0, flipped_count=0)
    with pytest.raises(LoodInputError, match="max_fraction"):
        replace(CANARIES, max_fraction=0.9)


def test_bad_group_specs_are_rejected_naming_the_key():
    ok = GroupSettings.from_schema(duplicate_count=2, multiplicities=[1, 2], neighbour_sizes=[2])
    with pytest.raises(LoodInputError, match="groups.multiplicities"):
        replace(ok, multiplicities=(1, 0))
    with pytest.raises(LoodInputError, match="groups.neighbour_sizes"):
        replace(ok, neighbour_sizes=(0,))
    with pytest.raises(LoodInputError, match="groups.network_sizes"):
        replace(ok, network_sizes=(1,))
    with pytest.raises(LoodInputError, match="groups.multiplicities"):
        copies_training_set(np.zeros((4, 2)), np.zeros(4, dtype=int), 1, 0)


def test_nearest_records_matches_a_loop(data):
    X, _ = data
    rng = np.random.default_rng(2)
    Q = rng.random((4, 5))
    by_d, by_c = nearest_records(X, Q)
    for j, q in enumerate(Q):
        assert by_d[j] == min(range(60), key=lambda i: np.linalg.norm(X[i] - q))
        assert by_c[j] == max(range(60), key=lambda i: X[i] @ q / np.linalg.norm(X[i]) / np.linalg.norm(q))


def test_reconstruction_table_flags_the_canary_by_cosine_not_distance(data):
    X, _ = data
    table = pd.DataFrame(
        {
            "record": [3, 10],
            "lood_at_record": [1.0, 2.0],
            "lood_optimised": [2.0, 3.0],
            "distance_to_record": [0.0, 0.0],
            "cosine_to_record": [1.0, 1.0],
        }
    )
    canaries = pd.DataFrame({"record": [3, 10], "kind": ["noise", "flipped"]})
    # q* = 5 x the canary: the same direction, far away; the other a random point
    queries = {3: 5 * X[3], 10: np.random.default_rng(0).random(5)}
    out = reconstruction_table(X, table, queries, canaries)
    row = out.set_index("record").loc[3]
    assert row["canary_nearest_by_cosine"] and row["nearest_by_cosine"] == 3
    assert row["kind"] == "noise"


TINY_ARCH = Arch(depth=1, width=8, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)


@pytest.fixture(scope="module")
def tiny_training():
    cfg = {"training": {"n_in": 4, "n_out": 4, "epochs": 2, "batch_size": 8, "lr": 0.05}}
    fill_defaults(cfg, SCHEMA_PATH)
    return Training.from_config(cfg["training"])


def test_copies_models_are_train_models_on_the_explicit_set_with_their_own_seeds(data, tiny_training):
    X, y = data
    X2, y2 = copies_training_set(X, y, 5, 3)
    assert len(X2) == 62 and np.array_equal(X2[60], X[5]) and np.array_equal(X2[61], X[5]) and np.all(y2[60:] == y[5])
    job = TrainingJob(X, y, TINY_ARCH, tiny_training, 11)
    logits = train_with_copies(job, [5], 3, [X[[5]]])
    model_seeds = [int_seed(11, "train_in", 3, 5, k) for k in range(4)]
    ref = train_models(
        X2, y2, TINY_ARCH, tiny_training, Models(model_seeds), Outputs(eval_X=X[[5]]), n_classes=3
    ).logits
    assert logits.shape == (1, 4, 1, 3) and np.array_equal(logits[0], ref)
    # The experiment's in-models (train_in, 0, m) are different models
    base = train_models(
        X2,
        y2,
        TINY_ARCH,
        tiny_training,
        Models([int_seed(11, "train_in", 0, k) for k in range(4)]),
        Outputs(eval_X=X[[5]]),
        n_classes=3,
    ).logits
    assert not np.allclose(base, ref)
    with pytest.raises(LoodInputError, match="m >= 2"):
        train_with_copies(job, [5], 1, [X[[5]]])


def test_canary_out_models_leave_out_exactly_the_canary(data, tiny_training):
    X, y = data
    logits = train_canary_out(TrainingJob(X, y, TINY_ARCH, tiny_training, 3), [7], [X[[7]]])
    keep = np.arange(60) != 7
    model_seeds = [int_seed(3, "train_out", 7, k, 1) for k in range(4)]
    ref = train_models(
        X[keep], y[keep], TINY_ARCH, tiny_training, Models(model_seeds), Outputs(eval_X=X[[7]]), n_classes=3
    ).logits
    assert np.array_equal(logits[0], ref)


def test_percentile_of_matches_scipy_mean_kind():
    from scipy.stats import percentileofscore

    from lood.figures.group import percentile_of

    ref = np.array([0.1, 0.5, 0.5, 0.9, 2.0])
    values = np.array([0.5, 3.0, 0.0, 0.9])
    assert np.allclose(percentile_of(values, ref), [percentileofscore(ref, v, kind="mean") for v in values])


def test_canary_summary_and_figure_from_tables(tmp_path):
    from lood.figures.canary import canary_figure, canary_summary
    from lood.figures.style import save_figure

    rng = np.random.default_rng(0)
    n = 30
    kinds = np.array(["real"] * 26 + ["flipped"] * 2 + ["noise"] * 2)
    lood_all = pd.DataFrame({"record": np.arange(n), "kl": np.r_[rng.random(26), 5.0, 6.0, 7.0, 8.0], "kind": kinds})
    rows = np.arange(26, 30)
    lood = pd.DataFrame({"record": rows, "kind": kinds[rows], "kl": lood_all["kl"].to_numpy()[rows], "auc_nngp": 0.9})
    real_mia = pd.DataFrame({"record": np.arange(10), "auc": np.linspace(0.5, 0.85, 10), "kind": "real"})
    mia = pd.concat(
        [pd.DataFrame({"record": rows, "auc": [0.8, 0.9, 0.95, 1.0], "kind": kinds[rows]}), real_mia]
    ).assign(auc_std=0.01)
    query = pd.DataFrame(
        {
            "record": rows,
            "lood_optimised": 1.0,
            "distance_to_record": 0.1,
            "cosine_to_record": 0.99,
            "canary_nearest_by_distance": True,
            "canary_nearest_by_cosine": [True, False, True, True],
        }
    )
    summary = canary_summary(lood_all, lood, mia, query)
    assert np.all(summary["kl_percentile_real"] == 100.0)
    assert summary.set_index("record").loc[26, "auc_percentile_real"] == pytest.approx(
        80.0
    )  # 0.8 exceeds 8 of the 10 real AUCs
    X = rng.random((n, 16))
    fig = canary_figure(lood_all, summary, mia, {r: X[r] for r in rows}, X, (4, 4))
    save_figure(fig, tmp_path / "c.png", tmp_path / "c.pdf")
    assert (tmp_path / "c.png").stat().st_size > 0


@pytest.mark.parametrize("data_order", ["shared", "aligned"])
def test_canary_out_models_under_a_shared_data_order(data, tiny_training, data_order):
    X, y = data
    training = replace(tiny_training, data_order=data_order)
    logits = train_canary_out(TrainingJob(X, y, TINY_ARCH, training, 3), [7], [X[[7]]])
    model_seeds = [int_seed(3, "train_out", 7, k, 1) for k in range(4)]
    # aligned: the canary in-models' order with row 7 deleted; shared: the canary's own order
    order = int_seed(3, "train_in_order", 1, 0) if data_order == "aligned" else int_seed(3, "train_out_order", 7, 1)
    ref = train_models(
        X, y, TINY_ARCH, training, Models(model_seeds, order_seed=order, exclude=7), Outputs(eval_X=X[[7]]), n_classes=3
    ).logits
    assert np.array_equal(logits[0], ref)


def test_norm_matched_canaries_have_the_real_records_median_norm(data):
    X, y = data
    settings = replace(CANARIES, noise_scaled_count=4, max_fraction=0.2)
    X_aug, y_aug, table = make_canaries(X, y, np.arange(0, 60, 3), settings, 7)
    scaled = table[table.kind == "noise_scaled"]["record"].to_numpy()
    assert scaled.tolist() == [63, 64, 65, 66] and len(X_aug) == 67
    median = np.median(np.linalg.norm(X, axis=1))
    assert np.allclose(np.linalg.norm(X_aug[scaled], axis=1), median, rtol=1e-12)
    raw = table[table.kind == "noise"]["record"].to_numpy()
    assert np.all(np.linalg.norm(X_aug[raw], axis=1) > median)  # the control's point: raw noise is larger
    # the other canaries are those drawn without norm-matched ones (they are drawn last)
    X0, y0, t0 = make_canaries(X, y, np.arange(0, 60, 3), CANARIES, 7)
    assert np.array_equal(X_aug[:63], X0) and t0[t0.kind == "flipped"].equals(table[table.kind == "flipped"])


def test_real_records_are_attacked_with_the_canaries_own_models(data, tiny_training):
    from lood.data.canaries import attacked_rows
    from lood.studies.group_networks import train_canary_in

    X, y = data
    studied = np.arange(0, 60, 3)
    X_aug, y_aug, table = make_canaries(X, y, studied, CANARIES, 7)
    rows = attacked_rows(table, studied, CANARIES, y_aug)
    assert rows["kind"].tolist()[-4:] == ["real"] * 4 and rows["record"].tolist()[-4:] == [0, 3, 6, 9]
    assert np.array_equal(rows["label"].to_numpy()[-4:], y[[0, 3, 6, 9]])  # studied rows are never flipped
    job = TrainingJob(X_aug, y_aug, TINY_ARCH, tiny_training, 3)
    records = rows["record"].to_numpy()
    in_logits = train_canary_in(job, X_aug[records])
    out_logits = train_canary_out(job, records, [X_aug[[r]] for r in records])
    # a real record's out-models: the canary set (canaries included) minus that record, canary seeds
    keep = np.arange(len(X_aug)) != 3
    seeds_ = [int_seed(3, "train_out", 3, k, 1) for k in range(4)]
    ref = train_models(
        X_aug[keep], y_aug[keep], TINY_ARCH, tiny_training, Models(seeds_), Outputs(X_aug[[3]]), n_classes=3
    )
    assert np.array_equal(out_logits[-3], ref.logits)
    # and its in-models are the canaries' in-models
    assert in_logits.shape[1] == len(records)
    ref_in = train_canary_in(job, X_aug[[3]])
    assert np.array_equal(in_logits[:, -3], ref_in[:, 0])
