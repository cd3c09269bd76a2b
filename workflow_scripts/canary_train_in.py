import pandas as pd

from lood.data.canaries import attacked_rows
from lood.io import save_npz
from lood.settings import CanarySettings
from lood.studies.group_networks import train_canary_in

from _common import training_job

log, _, job = training_job(snakemake)
rows = attacked_rows(
    pd.read_csv(snakemake.input.canaries),
    pd.read_csv(snakemake.input.records)["record"].to_numpy(),
    CanarySettings.from_config(snakemake.params.canaries),
    job.y,
)
records = rows["record"].to_numpy()
logits = train_canary_in(job, job.X[records])
save_npz(snakemake.output.logits, records=records, logits_record=logits)
log.info("trained %d in-models on the canary dataset; logits %s", job.training.n_in, logits.shape)
