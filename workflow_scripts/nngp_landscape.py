import pandas as pd

from lood.io import load_npz, save_csv
from lood.nngp import landscape_table, prepare
from lood.settings import Arch, NNGPSettings
from lood.sigma2 import read_sigma2

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
nngp = NNGPSettings.from_config(snakemake.params.nngp)
sigma2 = read_sigma2(pd.read_csv(snakemake.input.sigma2))  # chosen by rule choose_sigma2
gp = prepare(dataset["X"], dataset["y"], Arch.from_config(snakemake.params.arch), sigma2, nngp.block_size)
table = landscape_table(gp, load_npz(snakemake.input.probes)).assign(sigma2=sigma2)
save_csv(snakemake.output.landscape, table)
log.info("landscape: %d rows", len(table))
