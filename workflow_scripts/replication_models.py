import pandas as pd

from lood.io import save_npz
from lood.studies.replication import replication_records, train_replication

from _common import training_job

log, _, job = training_job(snakemake)
records = replication_records(pd.read_csv(snakemake.input.records), snakemake.params.n_records)
save_npz(snakemake.output.models, **train_replication(job, records["record"].to_numpy()))
