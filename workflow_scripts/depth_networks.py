import numpy as np
import pandas as pd

from lood.depth_networks import NetworkOutputs, network_row
from lood.io import load_npz, save_csv
from lood.settings import Arch

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
y_test = dataset.get("y_test", np.empty(0, dtype=np.int64))
rows = []
for name, arch, mia, lood, lr in zip(
    snakemake.params.networks,
    snakemake.params.archs,
    snakemake.input.mia,
    snakemake.input.lood,
    snakemake.input.lr,
    strict=True,
):
    chunks = [load_npz(f) for f in snakemake.input.in_logits if f.startswith(f"results/{name}/nn/in/")]
    rows.append(
        network_row(
            name,
            Arch.from_config(arch),
            NetworkOutputs(pd.read_csv(lr).iloc[0], pd.read_csv(mia), pd.read_csv(lood), chunks),
            dataset["y"],
            y_test,
            snakemake.params.loss,
        )
    )
    r = rows[-1]
    log.info(
        "%s (depth %d, %s; lr %.4g = %.3g x the stability bound): median MIA AUC %.3f [%.3f, %.3f], NNGP AUC %.4f, "
        "train loss %.4g, train acc %.4f, test acc %.4f over %d held-out records",
        name,
        r["depth"],
        r["variant"],
        r["lr"],
        r["lr_fraction_of_bound"],
        r["mia_auc_median"],
        r["mia_auc_q25"],
        r["mia_auc_q75"],
        r["auc_nngp_median"],
        r["train_loss"],
        r["train_acc"],
        r["test_acc"],
        r["n_test"],
    )
columns = ["experiment", "activation", "w_std", "depth", "mia_auc_median", "train_loss", "test_acc"]
save_csv(snakemake.output.table, pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns))
