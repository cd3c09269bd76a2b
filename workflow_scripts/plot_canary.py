import pandas as pd

from lood.figures.canary import canary_figure, canary_summary
from lood.figures.style import save_figure
from lood.io import load_npz, save_csv

from _common import setup

log = setup(snakemake)
lood_all = pd.read_csv(snakemake.input.lood_all)
real_mia = pd.read_csv(
    snakemake.input.real_mia
)  # the studied real records of the experiment (trained without canaries)
summary = canary_summary(
    lood_all,
    pd.read_csv(snakemake.input.lood),
    pd.read_csv(snakemake.input.mia),
    real_mia,
    pd.read_csv(snakemake.input.query),
)
save_csv(snakemake.output.table, summary)
q = load_npz(snakemake.input.queries)
dataset = load_npz(snakemake.input.dataset)
fig = canary_figure(
    lood_all,
    summary,
    real_mia,
    dict(zip(q["records"].tolist(), q["queries"], strict=True)),
    dataset["X"],
    tuple(dataset["image_shape"]),
)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
log.info("canaries:\n%s", summary.to_string(index=False))
