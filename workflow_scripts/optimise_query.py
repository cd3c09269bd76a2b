from pathlib import Path

import pandas as pd

from lood.io import load_npz, save_csv, save_npz
from lood.nngp import prepare
from lood.query import optimise_queries
from lood.settings import Arch, NNGPSettings, QuerySettings
from lood.sigma2 import read_sigma2

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
nngp = NNGPSettings.from_config(snakemake.params.nngp)
sigma2 = read_sigma2(pd.read_csv(snakemake.input.sigma2))  # chosen by rule choose_sigma2
gp = prepare(dataset["X"], dataset["y"], Arch.from_config(snakemake.params.arch), sigma2, nngp.block_size)
table, per_record = optimise_queries(
    gp, records, QuerySettings.from_config(snakemake.params.query), snakemake.params.seed
)
out = Path(snakemake.output.queries)
for record, arrays in per_record.items():
    save_npz(out / f"{record}.npz", **arrays)
save_csv(snakemake.output.table, table.assign(sigma2=sigma2))
log.info(
    "optimised LOOD / LOOD at record: median ratio %.3g", (table["lood_optimised"] / table["lood_at_record"]).median()
)
