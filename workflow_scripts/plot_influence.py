import pandas as pd

from lood.figures.influence import influence_figure
from lood.figures.style import save_figure
from lood.influence.comparison import comparison_table
from lood.io import save_csv

from _common import setup

log = setup(snakemake)
inputs = snakemake.input
scores = comparison_table(pd.read_csv(inputs.scores), pd.read_csv(inputs.lood), pd.read_csv(inputs.mia))
fig, table = influence_figure(scores, snakemake.params.bootstrap, snakemake.params.seed)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
save_csv(snakemake.output.table, table)
log.info("\n%s", table.to_string())
