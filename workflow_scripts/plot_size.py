import pandas as pd

from lood.figures.size import size_figure
from lood.figures.style import save_figure
from lood.io import save_csv

from _common import setup

setup(snakemake)
fig, table = size_figure(
    [pd.read_csv(f) for f in snakemake.input.summaries], snakemake.params.experiments, snakemake.params.nngp
)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
save_csv(snakemake.output.table, table)
