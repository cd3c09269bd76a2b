import pandas as pd

from lood.analytic.models import experiment_lood
from lood.io import load_npz, save_csv

from _common import setup

setup(snakemake)
lood, spread = experiment_lood(
    load_npz(snakemake.input.dataset),
    pd.read_csv(snakemake.input.records)["record"].to_numpy(),
    snakemake.params.arch,
    snakemake.params.training,
    snakemake.params.nngp,
    snakemake.input.sigma2,
    snakemake.input.lr,
    [load_npz(f) for f in snakemake.input.in_logits],
    snakemake.params.seed,
)
save_csv(snakemake.output.lood, lood)
save_csv(snakemake.output.spread, spread)
