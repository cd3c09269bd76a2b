import pandas as pd

from lood.figures.canary import canary_figure, canary_summary
from lood.figures.style import save_figure
from lood.io import load_npz, save_csv

from _common import setup

log = setup(snakemake)
lood_all = pd.read_csv(snakemake.input.lood_all)
mia = pd.read_csv(snakemake.input.mia)  # canaries and real records, attacked with the same models
summary = canary_summary(lood_all, pd.read_csv(snakemake.input.lood), mia, pd.read_csv(snakemake.input.query))
save_csv(snakemake.output.table, summary)
q = load_npz(snakemake.input.queries)
dataset = load_npz(snakemake.input.dataset)
fig = canary_figure(
    lood_all,
    summary,
    mia,
    dict(zip(q["records"].tolist(), q["queries"], strict=True)),
    dataset["X"],
    tuple(dataset["image_shape"]),
)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
log.info("canaries:\n%s", summary.to_string(index=False))
