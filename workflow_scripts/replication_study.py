import pandas as pd

from lood.empirical.model_bootstrap import ModelScores
from lood.io import load_npz, save_csv
from lood.studies.replication import replication_attack, replication_tables

from _common import setup

setup(snakemake)
models = load_npz(snakemake.input.models)
labels = pd.read_csv(snakemake.input.records).set_index("record").loc[models["records"], "label"].to_numpy()
run2 = replication_attack(models, labels, snakemake.params.splits, snakemake.params.seed)
records, summary = replication_tables(
    pd.read_csv(snakemake.input.mia),
    run2,
    pd.read_csv(snakemake.input.lood),
    pd.read_csv(snakemake.input.halves),
    ModelScores(**load_npz(snakemake.input.scores)),
    snakemake.params.bootstrap,
    snakemake.params.seed,
)
save_csv(snakemake.output.records, records)
save_csv(snakemake.output.summary, summary)
