import pandas as pd
from _common import setup

from lood.io import load_npz, save_csv
from lood.nngp import lood_table

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
nngp = snakemake.params.nngp
table = lood_table(
    dataset["X"], dataset["y"], records, snakemake.params.arch, nngp["sigma2"],
    nngp["auc_samples"], snakemake.params.seed, block_size=nngp["block_size"],
)
save_csv(snakemake.output.lood, table)
log.info("KL-LOOD over %d records: median %.4g, max %.4g", len(table), table["kl"].median(), table["kl"].max())
