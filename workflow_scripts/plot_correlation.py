import pandas as pd

from lood.empirical.model_bootstrap import ModelScores
from lood.figures.correlation import correlation_figure
from lood.figures.style import save_figure
from lood.io import load_npz, save_csv

from _common import setup

log = setup(snakemake)
fig, table = correlation_figure(
    pd.read_csv(snakemake.input.mia),
    pd.read_csv(snakemake.input.lood),
    pd.read_csv(snakemake.input.halves),
    snakemake.params.bootstrap,
    snakemake.params.seed,
    ModelScores(**load_npz(snakemake.input.scores)),
)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
save_csv(snakemake.output.table, table)
log.info("\n%s", table.to_string())
