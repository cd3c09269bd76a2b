from pathlib import Path

import pandas as pd

from lood.figures.reconstruction import reconstruction_figure
from lood.figures.style import save_figure
from lood.io import load_npz

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
table = pd.read_csv(snakemake.input.table)
queries = {int(r): load_npz(Path(snakemake.input.queries) / f"{r}.npz")["query"] for r in table["record"]}
fig = reconstruction_figure(table, queries, dataset["X"], tuple(dataset["image_shape"]))
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
