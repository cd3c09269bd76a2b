from pathlib import Path

import pandas as pd
from _common import setup

from lood.io import load_npz, save_csv, save_npz
from lood.nngp import prepare
from lood.query import optimise_queries
from lood.settings import Arch, NNGPSettings, QuerySettings

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
nngp = NNGPSettings.from_config(snakemake.params.nngp)
gp = prepare(dataset["X"], dataset["y"], Arch.from_config(snakemake.params.arch), nngp.sigma2, nngp.block_size)
table, per_record = optimise_queries(gp, records, QuerySettings.from_config(snakemake.params.query), snakemake.params.seed)
out = Path(snakemake.output.queries)
for record, arrays in per_record.items():
    save_npz(out / f"{record}.npz", **arrays)
save_csv(snakemake.output.table, table)
log.info("optimised LOOD / LOOD at record: median ratio %.3g", (table["lood_optimised"] / table["lood_at_record"]).median())
