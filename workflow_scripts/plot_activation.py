import pandas as pd

from lood.figures.activation import activation_figure
from lood.figures.style import save_figure

from _common import setup

log = setup(snakemake)
mia = [pd.read_csv(f) for f in snakemake.input.mia]
lood = [pd.read_csv(f) for f in snakemake.input.lood]
fig = activation_figure(mia[0], mia[1], lood[0], lood[1], tuple(snakemake.params.names))
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
log.info(
    "mean MIA AUC: %s %.3f, %s %.3f",
    snakemake.params.names[0],
    mia[0]["auc"].mean(),
    snakemake.params.names[1],
    mia[1]["auc"].mean(),
)
