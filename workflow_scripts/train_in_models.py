import numpy as np
import pandas as pd

from lood.io import load_npz, save_npz
from lood.train import train_in_chunk

from _common import save_weights, training_job

log, dataset, job = training_job(snakemake)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
probes = load_npz(snakemake.input.probes)
R, T, d = probes["queries"].shape
# In-models are evaluated at every studied record, at every landscape query and at every
# training record (logits_train: what nngp.sigma2 = calibrate matches, docs/math.md §12).
# And at the held-out records (logits_test: the networks' test accuracy in the depth study, issue 14).
X_test = dataset.get("X_test", np.empty((0, d)))
n_train = len(job.X)
eval_X = np.concatenate([job.X[records], probes["queries"].reshape(R * T, d), job.X, X_test])
model_ids = snakemake.params.model_ids
logits, params = train_in_chunk(job, model_ids, eval_X, return_params=True)
save_npz(
    snakemake.output.logits,
    model_ids=np.asarray(model_ids),
    records=records,
    logits_record=logits[:, :R],
    logits_probe=logits[:, R : R + R * T].reshape(len(model_ids), R, T, -1),
    logits_train=logits[:, R + R * T : R + R * T + n_train],
    logits_test=logits[:, R + R * T + n_train :],
)
save_weights(snakemake, params)
log.info("trained %d in-models; logits %s", len(model_ids), logits.shape)
