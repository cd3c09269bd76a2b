import pandas as pd

from lood.influence.baselines import comparison_table, influence_table
from lood.io import save_csv
from lood.settings import InfluenceSettings

from _common import training_job

log, _, job = training_job(snakemake)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
scores = influence_table(job, records, InfluenceSettings.from_config(snakemake.params.influence))
table = comparison_table(scores, pd.read_csv(snakemake.input.lood), pd.read_csv(snakemake.input.mia))
save_csv(snakemake.output.scores, table)
log.info("influence scores for %d records", len(table))
