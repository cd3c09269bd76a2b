import pandas as pd

from lood.figures.group_networks import group_networks_figure
from lood.figures.style import save_figure
from lood.io import save_csv

from _common import setup

log = setup(snakemake)
summary = pd.read_csv(snakemake.input.summary)
save_csv(snakemake.output.table, summary)
save_figure(
    group_networks_figure(summary, pd.read_csv(snakemake.input.table)), snakemake.output.png, snakemake.output.pdf
)
log.info("group attack, networks beside the NNGP:\n%s", summary.to_string(index=False))
