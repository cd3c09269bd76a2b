import pandas as pd

from lood.figures.style import save_figure
from lood.figures.vulnerable import vulnerable_figure
from lood.io import load_npz

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
fig = vulnerable_figure(
    pd.read_csv(snakemake.input.lood_all),
    pd.read_csv(snakemake.input.mia),
    dataset["X"],
    tuple(dataset["image_shape"]),
    snakemake.params.gallery,
)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
