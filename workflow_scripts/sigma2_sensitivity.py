import pandas as pd

from lood.analytic.sigma2 import sensitivity, stack_train_logits
from lood.io import load_npz, save_csv
from lood.settings import Arch, NNGPSettings

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
grid, objectives = sensitivity(
    dataset["X"],
    dataset["y"],
    Arch.from_config(snakemake.params.arch),
    NNGPSettings.from_config(snakemake.params.nngp),
    pd.read_csv(snakemake.input.records)["record"].to_numpy(),
    stack_train_logits([load_npz(f) for f in snakemake.input.in_logits]),
    snakemake.params.loss,
    snakemake.params.seed,
)
save_csv(snakemake.output.grid, grid)
save_csv(snakemake.output.objectives, objectives)
log.info(
    "LOOD of %d records at %d sigma2 values\n%s", grid["record"].nunique(), len(objectives), objectives.to_string()
)
