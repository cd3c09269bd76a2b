import numpy as np
import pandas as pd

from lood.depth import DataSplit, depth_sweep
from lood.io import load_npz, save_csv
from lood.settings import DepthSettings, NNGPSettings

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
    log.info(
        "%-14s depth %2d: sigma2 %.3g%s, KL-LOOD median %.4g [%.4g, %.4g], participation ratio %.3g, "
        "%d eigenvalues hold %.0f%% of the trace, test accuracy %.3f, median NNGP AUC %.4f",
        r["variant"],
        r["depth"],
        r["sigma2"],
        " (grid edge)" if r["sigma2_at_edge"] else "",
        r["kl_median"],
        r["kl_q25"],
        r["kl_q75"],
        r["participation_ratio"],
        r["trace_rank"],
        100 * r["rank_fraction"],
        r["test_acc"],
        r["auc_nngp_median"],
    )
