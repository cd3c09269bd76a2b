import pandas as pd
from _common import setup

from lood.io import save_csv
from lood.plots import save_figure, sigma_figure

log = setup(snakemake)
fig, marks = sigma_figure(pd.read_csv(snakemake.input.sensitivity), pd.read_csv(snakemake.input.sigma2))
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
save_csv(snakemake.output.marks, marks)
log.info("\n%s", marks.to_string())
