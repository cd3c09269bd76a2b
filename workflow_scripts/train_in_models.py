import numpy as np
import pandas as pd

from lood.empirical.logits import in_model_arrays, in_model_inputs
from lood.empirical.train import train_in_chunk
from lood.io import load_npz, save_npz

from _common import save_weights, training_job

log, dataset, job = training_job(snakemake)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
queries = load_npz(snakemake.input.probes)["queries"]
X_test = dataset.get("X_test", np.empty((0, job.X.shape[1])))
model_ids = snakemake.params.model_ids
logits, params = train_in_chunk(job, model_ids, in_model_inputs(job.X, records, queries, X_test), return_params=True)
save_npz(snakemake.output.logits, **in_model_arrays(logits, model_ids, records, queries.shape, len(job.X)))
save_weights(snakemake, params)
log.info("trained %d in-models; logits %s", len(model_ids), logits.shape)
