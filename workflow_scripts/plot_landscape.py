import pandas as pd
from _common import setup

from lood.io import save_csv
from lood.plots import landscape_figure, save_figure

log = setup(snakemake)
fig, peaks = landscape_figure(pd.read_csv(snakemake.input.nn), pd.read_csv(snakemake.input.nngp), snakemake.params.records)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
save_csv(snakemake.output.peaks, peaks)
log.info("argmax t, NNGP: %s; NN: %s", peaks.iloc[:, 1].value_counts().to_dict(), peaks.iloc[:, 2].value_counts().to_dict())
