import pandas as pd

from lood.figures.depth import depth_figure
from lood.figures.style import save_figure
from lood.io import save_csv

from _common import setup

log = setup(snakemake)
fig, points = depth_figure(pd.read_csv(snakemake.input.sweep), pd.read_csv(snakemake.input.networks))
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
save_csv(snakemake.output.points, points)
for _, p in points.iterrows():
    log.info(
        "%s (depth %d): median MIA AUC %.3f; median NNGP AUC %.4f (sweep sigma2), %.4f (experiment's sigma2)",
        p["experiment"],
        p["depth"],
        p["mia_auc_median"],
        p["auc_nngp_sweep"],
        p["auc_nngp_experiment"],
    )
