import pandas as pd

from lood.group_training import train_canary_in
from lood.io import save_npz

from _common import training_job

log, dataset, arch, training = training_job(snakemake)
records = pd.read_csv(snakemake.input.canaries)["record"].to_numpy()
X, y = dataset["X"], dataset["y"]
logits = train_canary_in(X, y, arch, training, snakemake.params.seed, X[records])
save_npz(snakemake.output.logits, records=records, logits_record=logits)
log.info("trained %d in-models on the canary dataset; logits %s", training.n_in, logits.shape)
