import pandas as pd

from lood.figures.landscape import landscape_figure, landscape_peaks
from lood.figures.style import save_figure
from lood.io import save_csv

from _common import setup

log = setup(snakemake)
nn, gp = pd.read_csv(snakemake.input.nn), pd.read_csv(snakemake.input.nngp)
fig, peaks = landscape_figure(nn, gp, snakemake.params.records)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
save_csv(snakemake.output.peaks, peaks)
log.info("landscape peaks: %s", landscape_peaks(nn, gp)[1])
