import pandas as pd

from lood.influence import comparison_table, influence_table
from lood.io import load_npz, save_csv
from lood.settings import Arch, InfluenceSettings, Training
from lood.step_size import resolved  # training.lr, or auto's step (results/<experiment>/nn/lr.csv)

from _common import setup, torch_threads

log = setup(snakemake)
torch_threads(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
scores = influence_table(
    dataset["X"],
    dataset["y"],
    records,
    Arch.from_config(snakemake.params.arch),
    resolved(Training.from_config(snakemake.params.training), snakemake.input.lr),
    InfluenceSettings.from_config(snakemake.params.influence),
    snakemake.params.seed,
)
table = comparison_table(scores, pd.read_csv(snakemake.input.lood), pd.read_csv(snakemake.input.mia))
save_csv(snakemake.output.scores, table)
log.info("influence scores for %d records", len(table))
