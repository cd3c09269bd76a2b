import pandas as pd

from lood.figures.sigma import sigma_figure, sigma_summary
from lood.figures.style import save_figure
from lood.io import save_csv

from _common import setup

log = setup(snakemake)
summary = sigma_summary(
    pd.read_csv(snakemake.input.grid),
    pd.read_csv(snakemake.input.objectives),
    pd.read_csv(snakemake.input.mia),
    snakemake.params.bootstrap,
    snakemake.params.seed,
)
fig, marks = sigma_figure(summary, pd.read_csv(snakemake.input.sigma2))
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
save_csv(snakemake.output.table, summary)
save_csv(snakemake.output.marks, marks)
log.info("\n%s\n%s", summary.to_string(), marks.to_string())
