import pandas as pd

from lood.io import save_csv
from lood.plots import correlation_figure, save_figure

from _common import setup

log = setup(snakemake)
fig, table = correlation_figure(
    pd.read_csv(snakemake.input.mia),
    pd.read_csv(snakemake.input.lood),
    pd.read_csv(snakemake.input.halves),
    snakemake.params.bootstrap,
    snakemake.params.seed,
)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
save_csv(snakemake.output.table, table)
log.info("\n%s", table.to_string())
