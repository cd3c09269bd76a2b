import json

import pandas as pd

from lood.figures.most_exposed import most_exposed_figure
from lood.figures.style import save_figure
from lood.io import load_npz

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
info = json.loads(open(snakemake.input.info).read())
title = (
    f"LOOD audit without training: n = {info['n']:,}, C = {info['classes']}, NNGP depth {info['depth']} "
    f"{info['activation']}, sigma2 = {info['sigma2']:.3g} ({info['sigma2_rule']})"
)
fig = most_exposed_figure(
    pd.read_csv(snakemake.input.lood_all), dataset["X"], tuple(dataset["image_shape"]), snakemake.params.top, title
)
save_figure(fig, snakemake.output.png, snakemake.output.pdf)
