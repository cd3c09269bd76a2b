import numpy as np
import pandas as pd

from lood.io import save_npz
from lood.records import check_duplicate_records
from lood.settings import GroupSettings
from lood.studies.group_networks import train_with_copies

from _common import training_job

log, _, job = training_job(snakemake)
studied = pd.read_csv(snakemake.input.records)["record"].to_numpy()
groups = GroupSettings.from_config(snakemake.params.groups)
records = check_duplicate_records(groups.duplicate_records, groups.duplicate_count, studied, len(job.X))
m = int(snakemake.wildcards.copies)
logits = train_with_copies(job, records, m, [job.X[[r]] for r in records])
save_npz(snakemake.output.logits, records=records, m=np.int64(m), logits_record=logits[:, :, 0])
log.info("trained %d x %d in-models with %d copies of records %s", len(records), job.training.n_in, m, records.tolist())
