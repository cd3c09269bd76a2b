"""A user's own image .npz, at a scale far from the digits', through the whole workflow with default settings.

The promise: data.normalise auto brings raw pixels to [0, 1], and lr, the LiSSA scale and the
landscape grid follow the data, so nothing needs hand-tuning; with normalisation switched off the
run stops with one message instead of reporting on networks that did not learn. The file here
holds 8 x 8 images with raw pixel values up to 400 (25x the digits' 0..16), three classes, and no
class selection in the config.
"""

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_digits

from conftest import snakemake

pytestmark = pytest.mark.e2e


def test_own_npz_at_another_scale_runs_with_default_settings(workflow_copy):
    digits = load_digits()
    keep = np.isin(digits.target, [1, 4, 7])
    X = 25.0 * digits.data[keep]  # pixel values 0..400
    np.savez(workflow_copy / "mine.npz", X=X, y=digits.target[keep], image_shape=np.array([8, 8]))
    # Only the sizes of the tiny test config; the scale-dependent settings keep their defaults
    # (training.lr auto, influence.lissa_scale auto, the landscape grid relative to each record).
    override = {
        "data": {"source": "npz", "path": "mine.npz", "classes": None, "n_records": 45},
        "training": {"lr": "auto"},
    }
    (workflow_copy / "raw.yaml").write_text(
        yaml.safe_dump({**override, "data": {**override["data"], "normalise": "none"}})
    )
    # Raw pixels as they are: lr auto shrinks to the data's scale, the in-models (3 epochs) barely move from their
    # init, and the run stops before any NNGP result with the one message naming cause and fix.
    raw = snakemake(
        workflow_copy,
        "--cores",
        "2",
        "--configfile",
        "tests/configs/tiny.yaml",
        "raw.yaml",
        "--",
        "results/relu/nngp/sigma2.csv",
    )
    assert raw.returncode != 0
    assert "did not learn" in raw.stdout + raw.stderr and "data.normalise: auto" in raw.stdout + raw.stderr
    lr_raw = pd.read_csv(workflow_copy / "results/relu/nn/lr.csv")["lr"].iloc[0]
    assert 0 < lr_raw < 0.1 / 25  # far below the digits' step: it followed the data's scale
    import shutil

    shutil.rmtree(workflow_copy / "results")
    (workflow_copy / "mine.yaml").write_text(yaml.safe_dump(override))
    run = snakemake(workflow_copy, "--cores", "2", "--configfile", "tests/configs/tiny.yaml", "mine.yaml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # training raises when any model diverges, so a finished run means none did; check the logits anyway
    for experiment in ("relu", "gelu"):
        res = workflow_copy / "results" / experiment
        with np.load(res / "nn/in/chunk0.npz") as f:
            assert np.isfinite(f["logits_record"]).all()
        learning = pd.read_csv(res / "nn/learning.csv").iloc[0]
        assert learning["gate"] != learning["gate"] or learning["gate"] == ""  # empty: the in-models learned
        assert learning["train_accuracy"] > learning["chance"] + 0.25 * (1 - learning["chance"])
        assert not pd.read_csv(res / "nngp/sigma2.csv")["at_edge"].iloc[0]
        assert (res / "figures/correlation.png").stat().st_size > 0
        assert np.isfinite(pd.read_csv(res / "influence/scores.csv").filter(like="influence")).all().all()
    with np.load(workflow_copy / "results/data/dataset.npz") as f:
        assert sorted(set(f["y"].tolist())) == [0, 1, 2]  # classes null: all three labels of the file, as 0..C-1
        assert str(f["normalise"]) == "unit_range" and f["X"].max() == 1.0 and f["X"].min() == 0.0
