from dataclasses import replace

import numpy as np
import pandas as pd

from lood.canary import reconstruction_table, record_kinds
from lood.io import save_csv, save_npz
from lood.nngp import lood_all_table, lood_table
from lood.query import optimise_queries
from lood.settings import QuerySettings

from _common import nngp_job

# The experiment's sigma2 (chosen on the data without canaries): the canaries must not tune the model.
log, nngp, sigma2, gp = nngp_job(snakemake)
canaries = pd.read_csv(snakemake.input.canaries)
records = canaries["record"].to_numpy()
lood_all = lood_all_table(gp).assign(kind=record_kinds(gp.fit.n, canaries), sigma2=sigma2)
save_csv(snakemake.output.lood_all, lood_all)
seed = snakemake.params.seed
lood = lood_table(gp, records, nngp.auc_samples, seed).merge(
    canaries[["record", "kind"]], on="record", validate="one_to_one"
)
lood = lood.assign(sigma2=sigma2)
save_csv(snakemake.output.lood, lood)
# Reconstruction: the ascent starts from the data mean plus noise whatever query.init says.
query = replace(QuerySettings.from_config(snakemake.params.query), init="noise")
table, per_record = optimise_queries(gp, records, query, seed)
reconstruction = reconstruction_table(gp.X, table, {r: v["query"] for r, v in per_record.items()}, canaries)
save_csv(snakemake.output.query, reconstruction.assign(sigma2=sigma2))
save_npz(
    snakemake.output.queries,
    records=records,
    queries=np.stack([per_record[int(r)]["query"] for r in records]),
    starts=np.stack([per_record[int(r)]["start"] for r in records]),
)
real = lood_all[lood_all.kind == "real"]["kl"]
log.info("KL-LOOD: real median %.4g, canaries by kind %s", real.median(), lood.groupby("kind")["kl"].median().to_dict())
