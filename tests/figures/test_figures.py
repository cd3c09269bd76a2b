"""Every figure renders from synthetic tables; records are drawn as what they are; landscape peaks and CIFAR images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as st

from lood.empirical.mia import HALVES_COLUMNS
from lood.empirical.model_bootstrap import model_scores
from lood.figures.correlation import correlation_figure
from lood.figures.influence import influence_figure
from lood.figures.landscape import landscape_figure, landscape_normalised, landscape_peaks
from lood.figures.reconstruction import reconstruction_figure
from lood.figures.records import as_image
from lood.figures.sigma import sigma_figure, sigma_summary
from lood.figures.style import save_figure
from lood.figures.vulnerable import vulnerable_figure
from lood.stats import signed_sqrt


def test_landscape_peaks_count_only_significant_records():
    t = [-1.0, 0.0, 1.0, 2.0]
    rows_nn, rows_gp = [], []
    # record 0: significant, peaks at 0; record 1: significant, peaks at 2; record 2: chance level, argmax at 0
    for rec, p0, peak in ((0, 1e-4, 0.0), (1, 1e-3, 2.0), (2, 0.4, 0.0)):
        for tt in t:
            rows_nn.append({"record": rec, "t": tt, "auc": 0.6 + 0.1 * (tt == peak), "auc_p": p0 if tt == 0 else 0.5})
            rows_gp.append({"record": rec, "t": tt, "kl": 1.0 + (tt == 0.0)})
    peaks, summary = landscape_peaks(pd.DataFrame(rows_nn), pd.DataFrame(rows_gp))
    assert peaks["significant"].tolist() == [True, True, False]
    assert summary["significant"] == 2 and summary["nn_peaks_at_0_significant"] == 1
    assert summary["nn_peaks_at_0_all"] == 2 and summary["nngp_peaks_at_0"] == 3
    assert summary["random_argmax_expected"] == pytest.approx(2 / 4)


def test_cifar_rows_become_hwc_images():
    chw = np.zeros((3, 2, 2))
    chw[0] = 1.0  # red channel
    img = as_image(chw.ravel(), (3, 2, 2))
    assert img.shape == (2, 2, 3) and np.all(img[..., 0] == 1) and np.all(img[..., 1:] == 0)


def _synthetic_tables(n=12, seed=0):
    rng = np.random.default_rng(seed)
    kl = rng.lognormal(size=n)
    rec = np.arange(n) * 3
    mia = pd.DataFrame(
        {
            "record": rec,
            "auc": 0.5 + 0.1 * np.log1p(kl),
            "auc_std": 0.02,
            "auc_p": 0.01,
            "diff": kl / 10 - 0.05,
            "diff_raw": kl / 10,
            "diff_std": 0.01,
            "auc_lira": 0.5,
        }
    )
    lood = pd.DataFrame({"record": rec, "kl": kl, "mse": kl / 20, "auc_nngp": 0.5 + 0.05 * kl, "auc_nngp_se": 0.001})
    t = np.array([-1.0, 0.0, 1.0])
    land = pd.DataFrame(
        [
            (r, tt, k * np.exp(-tt * tt), 0.5 + 0.1 * np.exp(-tt * tt), 0.01, 0.01, 0.0)
            for r, k in zip(rec, kl, strict=True)
            for tt in t
        ],
        columns=["record", "t", "kl", "auc", "auc_std", "auc_p", "mse"],
    )
    return mia, lood, land


def test_figures_render(tmp_path):
    mia, lood, land = _synthetic_tables()
    halves = pd.concat([mia[["record", "auc", "diff"]].assign(repeat=r, half=h) for r in range(2) for h in range(2)])
    halves.loc[(halves["repeat"] == 1) & (halves["half"] == 1), "auc"] *= -1  # one half disagrees
    fig, table = correlation_figure(mia, lood, halves, n_boot=100, seed=0)
    save_figure(fig, tmp_path / "c.png", tmp_path / "c.pdf")
    assert set(table["pair"]) == {"kl_vs_auc", "auc_nngp_vs_auc", "sqrt_mse_vs_sqrt_diff"}
    table = table.set_index("pair")
    # A monotone synthetic relation: Spearman 1 for KL vs AUC; Pearson on log10 KL, as plotted.
    assert np.isclose(table.loc["kl_vs_auc", "spearman_r"], 1.0)
    assert np.isclose(table.loc["kl_vs_auc", "pearson_r"], st.pearsonr(np.log10(lood["kl"]), mia["auc"]).statistic)
    assert table.loc["kl_vs_auc", "x"] == "log10_kl"
    assert table.loc["sqrt_mse_vs_sqrt_diff", "n_diff_nonpositive"] == np.sum(mia["diff"] <= 0) > 0
    expected = st.pearsonr(np.sqrt(lood["mse"]), signed_sqrt(mia["diff"])).statistic
    assert np.isclose(table.loc["sqrt_mse_vs_sqrt_diff", "pearson_r"], expected)
    assert np.isclose(table.loc["auc_nngp_vs_auc", "mean_abs_auc_gap"], np.mean(np.abs(lood["auc_nngp"] - mia["auc"])))
    # each pair's ceiling is its network measure's: AUC for the first two, diff for the third
    # replication: with one half of repeat 1 reversed, KL agrees with 3 of the 4 halves (mean rho 0.5)
    # and the halves agree in repeat 0 only (mean 0); diff's halves all agree with each other and with x
    np.testing.assert_allclose(table["spearman_half"], [0.5, 0.5, 1.0])
    np.testing.assert_allclose(table["spearman_replication"], [0.0, 0.0, 1.0])
    # the paired difference of the replication comparison and the disattenuated rho, in the table and the titles
    assert np.allclose(table["spearman_half_minus_rep"], table["spearman_half"] - table["spearman_replication"])
    assert "ρ(LOOD, half) − ρ(half, other half)" in fig.axes[0].get_title()
    # the two-level bootstrap (records and models) with model scores: wider than the records-only CI
    rng = np.random.default_rng(5)
    m = 12
    in_logits = rng.normal(size=(m, len(mia), 2)) + np.c_[mia["auc"] - 0.5, np.zeros(len(mia))][None]
    scores = model_scores(mia["record"].to_numpy(), in_logits, rng.normal(size=(len(mia), m, 2)))
    _, two = correlation_figure(mia, lood, halves, n_boot=200, seed=0, scores=scores)
    width = two["spearman_hi"] - two["spearman_lo"]
    assert (two["two_level_spearman_hi"] - two["two_level_spearman_lo"] > width).all()
    # too few models for half attacks (an empty mia_halves.csv): the columns are NaN, the figure still renders
    _, table_no_halves = correlation_figure(mia, lood, pd.DataFrame(columns=HALVES_COLUMNS), n_boot=100, seed=0)
    assert table_no_halves[["spearman_half", "spearman_replication"]].isna().all().all()
    fig, peaks = landscape_figure(
        land[["record", "t", "auc", "auc_std", "auc_p"]].assign(diff=0.0), land[["record", "t", "kl", "mse"]], 2
    )
    save_figure(fig, tmp_path / "l.png", tmp_path / "l.pdf")
    assert (peaks[["nngp_argmax_t", "nn_argmax_t"]] == 0.0).all().all() and peaks["significant"].all()
    scores = pd.DataFrame(
        {
            "record": mia.record,
            "tracin": mia["diff"] * 2,
            "influence": -mia["diff"],
            "influence_prediction": np.exp(mia["diff"]),
            "tracin_one": mia["diff"],
            "influence_one": mia["diff"],
            "influence_prediction_one": -mia["diff"],
            "networks": 3,
            "lood_mse": lood["mse"],
            "diff_nn": mia["diff"],
        }
    )
    fig, table = influence_figure(scores, n_boot=100, seed=0)
    save_figure(fig, tmp_path / "i.png", tmp_path / "i.pdf")
    assert (table["networks"] == 3).all()
    table = table.set_index("estimator")
    assert np.isclose(table.loc["influence_prediction", "spearman_r"], 1.0)
    assert np.isclose(table.loc["influence_prediction_one", "spearman_r"], -1.0)
    assert np.isclose(table.loc["influence_one", "lood_minus_spearman_diff"], 0.0)
    assert np.isclose(table.loc["influence", "spearman_r"], -1.0)
    # √LOOD is a monotone function of diff here (ρ = 1), influence the reverse (ρ = -1): the difference is 2
    assert np.isclose(table.loc["influence", "lood_minus_spearman_diff"], 2.0)
    assert np.isnan(table.loc["sqrt_lood_mse"].get("lood_minus_spearman_diff", np.nan))
    grid = np.geomspace(1e-3, 1.0, 7)
    # per-(σ², record) LOOD: KL tracks the MIA AUC at every σ², the NNGP AUC approaches it at σ² = grid[3]
    long = pd.DataFrame(
        [
            {
                "sigma2": g,
                "record": r,
                "kl": k * (1 + g),
                "mse": k / 20,
                "auc_nngp": a + 0.05 * abs(np.log10(g / grid[3])),
            }
            for g in grid
            for r, k, a in zip(mia["record"], lood["kl"], mia["auc"], strict=True)
        ]
    )
    objectives = pd.DataFrame(
        {
            "sigma2": grid,
            "calibration_objective": (np.log(grid / grid[2])) ** 2 + 1,
            "neg_log_evidence_scaled": (np.log(grid / grid[5])) ** 2,
            "neg_log_evidence_fixed": 0.0,
        }
    )
    summary = sigma_summary(long, objectives, mia, 100, 0)
    assert np.allclose(summary["spearman_kl_auc"], 1.0) and summary["mean_abs_auc_gap"].idxmin() == 3
    assert np.isclose(summary["spearman_md_diff"][0], st.spearmanr(lood["mse"], mia["diff"]).statistic)
    fig, marks = sigma_figure(summary, pd.DataFrame({"sigma2": [grid[2]], "rule": ["calibrate"]}))
    save_figure(fig, tmp_path / "s.png", tmp_path / "s.pdf")
    assert marks.set_index("mark")["sigma2"].to_dict() == {
        "calibrate": grid[2],
        "marginal_likelihood": grid[5],
        "used (calibrate)": grid[2],
    }
    for name in "clis":
        with Image.open(tmp_path / f"{name}.png") as img:
            img.verify()


def _record_panels(fig):
    """The figure's axes that draw records: every axes with an image or with a bar chart of features."""
    return [ax for ax in fig.axes if ax.get_images() or (ax.containers and ax.get_ylabel() != "records")]


@pytest.mark.parametrize("shape", [(16,), (4, 4)], ids=["tabular", "image"])
def test_records_are_drawn_as_bars_when_tabular_and_as_images_when_images(shape, tmp_path):
    from matplotlib.container import BarContainer

    from lood.figures.most_exposed import most_exposed_figure

    mia, lood, _ = _synthetic_tables()
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(int(mia["record"].max()) + 1, 16))
    lood_all = lood.assign(label=0)
    k = 3
    recon = pd.DataFrame(
        {"record": mia["record"][:4], "lood_at_record": 1.0, "lood_optimised": [4.0, 3.0, 2.0, 1.0]}
    ).assign(cosine_to_record=0.5)
    queries = {int(r): rng.normal(size=16) for r in recon["record"]}
    audit = lood_all.assign(rank=lood_all["kl"].rank(ascending=False))
    figures = {
        "vulnerable": (vulnerable_figure(lood_all, mia, X, shape, k), 2 * k),
        "reconstruction": (reconstruction_figure(recon, queries, X, shape), 4 if len(shape) == 1 else 8),
        "most_exposed": (most_exposed_figure(audit, X, shape, k, "audit"), k),
    }
    for name, (fig, expected) in figures.items():
        panels = _record_panels(fig)
        assert len(panels) == expected, name
        if len(shape) == 1:  # bars over the 16 features, no pixels anywhere, and the caption says so
            assert not any(ax.get_images() for ax in fig.axes), name
            for ax in panels:
                bars = [c for c in ax.containers if isinstance(c, BarContainer)]
                assert len(bars) == 1 and len(bars[0]) == 16, name
            assert "tabular" in fig.get_suptitle(), name
        else:
            assert all(len(ax.get_images()) == 1 and not ax.containers for ax in panels), name
            assert "tabular" not in fig.get_suptitle(), name
        save_figure(fig, tmp_path / f"{name}.png", tmp_path / f"{name}.pdf")
    with pytest.raises(ValueError, match="not an image shape"):
        as_image(X[0], (16,))


def test_landscape_average_stays_within_its_normalisation():
    """A record whose AUC never exceeds ½ (max AUC − ½ = −0.01) once sent the average panel to −4·10⁶; now every
    normalised value lies in [−1, 1], a record flat at ½ is left out, and the panel's axis says so."""
    t = [-1.0, 0.0, 1.0]
    rows_nn, rows_gp = [], []
    for rec, aucs in {1: [0.55, 0.9, 0.6], 2: [0.45, 0.49, 0.47], 3: [0.5, 0.5, 0.5]}.items():
        for tk, a in zip(t, aucs, strict=True):
            rows_nn.append({"record": rec, "t": tk, "auc": a, "auc_std": 0.01, "auc_p": 0.01 if rec == 1 else 0.6})
            rows_gp.append({"record": rec, "t": tk, "kl": 1.0 + (tk == 0.0), "mse": 0.1})
    nn, gp = pd.DataFrame(rows_nn), pd.DataFrame(rows_gp)
    norm_gp, norm_nn = landscape_normalised(nn, gp)
    assert norm_nn["v"].between(-1, 1).all() and norm_gp["v"].between(0, 1).all()
    assert sorted(norm_nn["record"].unique()) == [1, 2]
    assert norm_nn.set_index(["record", "t"]).loc[(2, 0.0), "v"] == pytest.approx(-0.01 / 0.05)
    fig, _ = landscape_figure(nn, gp, n_shown=1)
    average = fig.axes[1]
    assert average.get_ylim() == pytest.approx((-1.05, 1.05))
    for line in average.get_lines():
        y = np.asarray(line.get_ydata(), dtype=float)
        assert np.all(np.abs(y[np.isfinite(y)]) <= 1.0 + 1e-12)
    assert "1 with AUC ½ throughout left out" in average.get_title()
