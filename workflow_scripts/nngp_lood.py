import pandas as pd

from lood.io import load_npz, save_csv
from lood.nngp import lood_table, prepare
from lood.settings import Arch, NNGPSettings
from lood.sigma2 import read_sigma2

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
nngp = NNGPSettings.from_config(snakemake.params.nngp)
sigma2 = read_sigma2(pd.read_csv(snakemake.input.sigma2))  # chosen by rule choose_sigma2
gp = prepare(dataset["X"], dataset["y"], Arch.from_config(snakemake.params.arch), sigma2, nngp.block_size)
table = lood_table(gp, records, nngp.auc_samples, snakemake.params.seed).assign(sigma2=sigma2)
save_csv(snakemake.output.lood, table)
log.info("KL-LOOD over %d records: median %.4g, max %.4g", len(table), table["kl"].median(), table["kl"].max())
