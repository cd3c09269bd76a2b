from pathlib import Path

import pandas as pd
from _common import setup

from lood.io import load_npz, save_csv, save_npz
from lood.nngp import optimise_queries

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
q = snakemake.params.query
table, per_record = optimise_queries(
    dataset["X"], dataset["y"], records, snakemake.params.arch, snakemake.params.nngp["sigma2"],
    q["init"], q["init_noise"], q["steps"], q["lr"], snakemake.params.seed,
)
out = Path(snakemake.output.queries)
for record, arrays in per_record.items():
    save_npz(out / f"{record}.npz", **arrays)
save_csv(snakemake.output.table, table)
log.info("optimised LOOD / LOOD at record: median ratio %.3g", (table["lood_optimised"] / table["lood_at_record"]).median())
