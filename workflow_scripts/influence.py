import pandas as pd
from _common import setup, torch_threads

from lood.influence import influence_table
from lood.io import load_npz, save_csv

log = setup(snakemake)
torch_threads(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
scores = influence_table(
    dataset["X"], dataset["y"], records, snakemake.params.arch, snakemake.params.training,
    snakemake.params.influence, snakemake.params.seed,
)
lood = pd.read_csv(snakemake.input.lood)[["record", "mse"]].rename(columns={"mse": "lood_mse"})
mia = pd.read_csv(snakemake.input.mia)[["record", "diff"]].rename(columns={"diff": "diff_nn"})
table = scores.merge(lood, on="record", validate="one_to_one").merge(mia, on="record", validate="one_to_one")
save_csv(snakemake.output.scores, table[["record", "tracin", "influence", "lood_mse", "diff_nn"]])
log.info("influence scores for %d records", len(table))
