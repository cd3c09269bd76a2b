from pathlib import Path

import pandas as pd

from lood.analytic.query import optimise_queries
from lood.io import save_csv, save_npz
from lood.settings import QuerySettings

from _common import nngp_job

log, nngp, sigma2, gp = nngp_job(snakemake)  # sigma2: chosen by rule choose_sigma2
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
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
