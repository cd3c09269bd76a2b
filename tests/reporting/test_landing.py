"""The report's first page: the headline table and the per-figure lines come from the run's tables."""

from __future__ import annotations

from pathlib import Path

import docutils.core
import numpy as np
import pandas as pd

from lood.reporting.landing import headline_rst, landing_rst


def _run(root: Path, name: str, rho: float) -> None:
    base = root / name
    for sub in ("figures", "nn", "nngp"):
        (base / sub).mkdir(parents=True)
    rows = []
    for pair in ("kl_vs_auc", "auc_nngp_vs_auc", "sqrt_mse_vs_sqrt_diff"):
        rows.append(
            {
                "pair": pair,
                "n": 4,
                "spearman_r": rho,
                "spearman_lo": rho - 0.2,
                "spearman_hi": rho + 0.1,
                "pearson_r": 0.5,
                "pearson_lo": 0.1,
                "pearson_hi": 0.8,
                "spearman_half": 0.4,
                "spearman_replication": 0.3,
                "mean_abs_auc_gap": 0.042,
            }
        )
    pd.DataFrame(rows).to_csv(base / "figures" / "correlation.csv", index=False)
    pd.DataFrame({"record": [1, 2, 3, 4], "auc": [0.5, 0.6, 0.7, 0.9]}).to_csv(base / "nn" / "mia.csv", index=False)
    pd.DataFrame({"record": [1, 2, 3, 4], "auc_nngp": [0.55, 0.6, 0.61, 0.8]}).to_csv(
        base / "nngp" / "lood.csv", index=False
    )
    pd.DataFrame({"sigma2": [0.075], "rule": ["calibrate"], "at_edge": [True]}).to_csv(
        base / "nngp" / "sigma2.csv", index=False
    )
    pd.DataFrame({"record": [1, 2, 3, 4], "kl": [0.1, 3.0, 0.2, 2.0]}).to_csv(
        base / "nngp" / "lood_all.csv", index=False
    )


def test_the_landing_page_leads_with_this_runs_numbers(tmp_path):
    _run(tmp_path, "relu", 0.61)
    _run(tmp_path, "gelu", 0.76)
    text = landing_rst(tmp_path, ["relu", "gelu"], "The study\n=========\n", ["relu", "gelu"])
    assert text.index("This run's result") < text.index("The study")
    assert '"relu", "KL-LOOD vs MIA AUC", "0.61 [0.41, 0.71]"' in text
    assert '"gelu", "KL-LOOD vs MIA AUC", "0.76 [0.56, 0.86]"' in text
    assert f"median MIA AUC {np.median([0.5, 0.6, 0.7, 0.9]):.3f}" in text
    assert "Most exposed records** (KL-LOOD, no retraining): #2, #4, #3, #1." in text
    assert "on the edge of its grid" in text
    html = docutils.core.publish_parts(text, writer_name="html", settings_overrides={"report_level": 2})["body"]
    assert "<table" in html and "0.61 [0.41, 0.71]" in html and "problematic" not in html


def test_a_changed_table_changes_the_headline(tmp_path):
    _run(tmp_path, "relu", 0.61)
    table = pd.read_csv(tmp_path / "relu" / "figures" / "correlation.csv")
    before = headline_rst({"relu": table})
    table.loc[0, "spearman_r"] = 0.71
    assert before != headline_rst({"relu": table}) and "0.71 [0.41, 0.71]" in headline_rst({"relu": table})
