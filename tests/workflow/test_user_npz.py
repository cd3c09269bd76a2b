"""A user's own image .npz, at a scale far from the digits', through the whole workflow with default settings.

The promise: lr, the LiSSA scale and the landscape grid follow the data, so nothing needs
hand-tuning. The file here holds 8 x 8 images with raw pixel values up to 400 (25x the digits'
0..16), three classes, and no class selection in the config.
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
    (workflow_copy / "mine.yaml").write_text(yaml.safe_dump(override))
    run = snakemake(workflow_copy, "--cores", "2", "--configfile", "tests/configs/tiny.yaml", "mine.yaml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # training raises when any model diverges, so a finished run means none did; check the logits anyway
    for experiment in ("relu", "gelu"):
        res = workflow_copy / "results" / experiment
        with np.load(res / "nn/in/chunk0.npz") as f:
            assert np.isfinite(f["logits_record"]).all()
        lr = pd.read_csv(res / "nn/lr.csv")["lr"].iloc[0]
        assert 0 < lr < 0.1 / 25  # far below the digits' step: it followed the data's scale
        assert (res / "figures/correlation.png").stat().st_size > 0
        assert np.isfinite(pd.read_csv(res / "influence/scores.csv").filter(like="influence")).all().all()
    with np.load(workflow_copy / "results/data/dataset.npz") as f:
        assert sorted(set(f["y"].tolist())) == [0, 1, 2]  # classes null: all three labels of the file, as 0..C-1
