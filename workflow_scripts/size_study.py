import pandas as pd

from lood.io import load_npz, save_csv
from lood.studies.size import experiment_size_study

from _common import setup

setup(snakemake)
rows, summary, spread = experiment_size_study(
    load_npz(snakemake.input.dataset),
    pd.read_csv(snakemake.input.records)["record"].to_numpy(),
    snakemake.params.arch,
    snakemake.params.training,
    snakemake.params.nngp,
    snakemake.input.sigma2,
    snakemake.input.lr,
    [load_npz(f) for f in snakemake.input.in_logits],
    pd.read_csv(snakemake.input.mia),
    snakemake.params.bootstrap,
    snakemake.params.seed,
)
save_csv(snakemake.output.rows, rows)
save_csv(snakemake.output.summary, summary)
save_csv(snakemake.output.spread, spread)
