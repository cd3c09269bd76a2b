import pandas as pd

from lood.group_training import train_canary_out
from lood.io import save_npz

from _common import training_job

log, dataset, arch, training = training_job(snakemake)
records = pd.read_csv(snakemake.input.canaries)["record"].to_numpy()
X, y = dataset["X"], dataset["y"]
logits = train_canary_out(X, y, arch, training, snakemake.params.seed, records, [X[[r]] for r in records])
save_npz(snakemake.output.logits, records=records, logits_record=logits[:, :, 0])
log.info("trained %d out-models for each of %d canaries", training.n_out, len(records))
