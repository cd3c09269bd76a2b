import pandas as pd

from lood.io import save_csv, save_npz
from lood.settings import QuerySettings
from lood.studies.canary_nngp import canary_summary_line, canary_tables

from _common import nngp_job

# The experiment's sigma2 (chosen on the data without canaries): the canaries must not tune the model.
log, nngp, sigma2, gp = nngp_job(snakemake)
canaries = pd.read_csv(snakemake.input.canaries)
query = QuerySettings.from_config(snakemake.params.query)
tables = canary_tables(gp, canaries, nngp, query, sigma2, snakemake.params.seed)
save_csv(snakemake.output.lood_all, tables.lood_all)
save_csv(snakemake.output.lood, tables.lood)
save_csv(snakemake.output.query, tables.reconstruction)
save_npz(snakemake.output.queries, **tables.queries)
log.info("%s", canary_summary_line(tables))
