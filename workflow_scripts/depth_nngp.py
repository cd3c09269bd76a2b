import numpy as np
import pandas as pd

from lood.io import load_npz, save_csv
from lood.settings import DepthSettings, NNGPSettings
from lood.studies.depth_nngp import DataSplit, depth_sweep, sweep_summary

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
study = DepthSettings.from_config(snakemake.params.study)
X_test = dataset.get("X_test", np.empty((0, dataset["X"].shape[1])))
y_test = dataset.get("y_test", np.empty(0, dtype=np.int64))
log.info("held-out records: %d (%s)", len(X_test), dataset.get("test_source", "none in dataset.npz: rerun it"))
if not len(X_test):
    log.warning("no held-out records: the test accuracy is NaN")
table, per_record = depth_sweep(
    DataSplit(dataset["X"], dataset["y"], X_test, y_test),
    records,
    snakemake.params.model,
    study,
    NNGPSettings.from_config(snakemake.params.nngp),
    snakemake.params.loss,
    snakemake.params.seed,
    log,
)
save_csv(snakemake.output.table, table)
save_csv(snakemake.output.records, per_record)
for _, r in table.iterrows():
    log.info("%s", sweep_summary(r))
