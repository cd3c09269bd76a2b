from lood.empirical.learning import experiment_learning
from lood.io import load_npz, save_csv

from _common import setup

setup(snakemake)
table = experiment_learning(
    load_npz(snakemake.input.dataset),
    [load_npz(f) for f in snakemake.input.in_logits],
    snakemake.params.loss,
    snakemake.params.checks,
)
save_csv(snakemake.output.learning, table)
