import pandas as pd

from lood.data.canaries import attacked_rows
from lood.io import save_npz
from lood.settings import CanarySettings
from lood.studies.group_networks import train_canary_out

from _common import training_job

log, _, job = training_job(snakemake)
rows = attacked_rows(
    pd.read_csv(snakemake.input.canaries),
    pd.read_csv(snakemake.input.records)["record"].to_numpy(),
    CanarySettings.from_config(snakemake.params.canaries),
    job.y,
)
records = rows["record"].to_numpy()
logits = train_canary_out(job, records, [job.X[[r]] for r in records], log)
save_npz(snakemake.output.logits, records=records, logits_record=logits[:, :, 0])
log.info("trained %d out-models for each of %d rows (canaries and real records)", job.training.n_out, len(records))
