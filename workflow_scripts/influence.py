import pandas as pd

from lood.influence.baselines import influence_table
from lood.io import save_csv
from lood.settings import InfluenceSettings

from _common import training_job

log, _, job = training_job(snakemake)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
table = influence_table(job, records, InfluenceSettings.from_config(snakemake.params.influence))
save_csv(snakemake.output.scores, table)
log.info("influence scores for %d records", len(table))
