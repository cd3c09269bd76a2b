import numpy as np
import pandas as pd

from lood.checks import check_duplicate_records
from lood.group_training import train_with_copies
from lood.io import save_npz
from lood.settings import GroupSettings

from _common import training_job

log, dataset, arch, training = training_job(snakemake)
X, y = dataset["X"], dataset["y"]
studied = pd.read_csv(snakemake.input.records)["record"].to_numpy()
groups = GroupSettings.from_config(snakemake.params.groups)
records = check_duplicate_records(groups.duplicate_records, groups.duplicate_count, studied, len(X))
m = int(snakemake.wildcards.copies)
logits = train_with_copies(
    X,
    y,
    arch,
    training,
    snakemake.params.seed,
    records,
    m,
    [X[[r]] for r in records],
)
save_npz(snakemake.output.logits, records=records, m=np.int64(m), logits_record=logits[:, :, 0])
log.info("trained %d x %d in-models with %d copies of records %s", len(records), training.n_in, m, records.tolist())
