import pandas as pd

from lood.figures.group import duplicate_slopes, duplicate_summary, group_figure
from lood.figures.style import save_figure
from lood.io import save_csv

from _common import setup

log = setup(snakemake)
summary = duplicate_summary(pd.read_csv(snakemake.input.duplicates), pd.read_csv(snakemake.input.mia))
neighbours = pd.read_csv(snakemake.input.neighbours)
save_csv(snakemake.output.table, summary)
slopes = duplicate_slopes(summary)
save_csv(snakemake.output.slopes, slopes)
log.info("per-record slopes of AUC on log2 m (networks vs NNGP):\n%s", slopes.round(4).to_string(index=False))
save_figure(group_figure(summary, neighbours), snakemake.output.png, snakemake.output.pdf)
log.info("medians by m:\n%s", summary[summary.record < 0].to_string(index=False))
