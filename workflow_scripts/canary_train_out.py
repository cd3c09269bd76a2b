import pandas as pd

from lood.io import save_npz
from lood.studies.group_networks import train_canary_out

from _common import training_job

log, _, job = training_job(snakemake)
records = pd.read_csv(snakemake.input.canaries)["record"].to_numpy()
logits = train_canary_out(job, records, [job.X[[r]] for r in records])
save_npz(snakemake.output.logits, records=records, logits_record=logits[:, :, 0])
log.info("trained %d out-models for each of %d canaries", job.training.n_out, len(records))
