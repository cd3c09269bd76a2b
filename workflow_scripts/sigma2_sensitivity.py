import pandas as pd
from _common import setup

from lood.io import load_npz, save_csv
from lood.settings import Arch, NNGPSettings
from lood.sigma2 import sensitivity, stack_train_logits

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
table = sensitivity(
    dataset["X"], dataset["y"], Arch.from_config(snakemake.params.arch), NNGPSettings.from_config(snakemake.params.nngp),
    pd.read_csv(snakemake.input.mia), stack_train_logits([load_npz(f) for f in snakemake.input.in_logits]),
    snakemake.params.loss, snakemake.params.bootstrap, snakemake.params.seed,
)
save_csv(snakemake.output.table, table)
log.info("\n%s", table.to_string())
