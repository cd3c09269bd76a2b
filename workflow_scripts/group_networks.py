import numpy as np
import pandas as pd

from lood.io import load_npz, save_csv
from lood.settings import GroupSettings, MIASettings
from lood.studies.group_attack import group_networks_tables

from _common import setup

log = setup(snakemake)
groups = GroupSettings.from_config(snakemake.params.groups)
table, summary = group_networks_tables(
    [load_npz(f) for f in snakemake.input.out_logits],
    np.concatenate([load_npz(f)["logits_train"] for f in snakemake.input.in_logits]),
    load_npz(snakemake.input.dataset)["y"],
    pd.read_csv(snakemake.input.neighbours),
    pd.read_csv(snakemake.input.mia),
    pd.read_csv(snakemake.input.lood),
    groups.network_kinds,
    MIASettings.from_config(snakemake.params.mia).splits,
    snakemake.params.bootstrap,
    snakemake.params.seed,
    log,
)
save_csv(snakemake.output.table, table)
save_csv(snakemake.output.summary, summary)
