import pandas as pd

from lood.empirical.logits import out_model_arrays, out_model_inputs
from lood.empirical.train import train_out_group
from lood.io import load_npz, save_npz

from _common import save_weights, training_job

log, _, job = training_job(snakemake)
positions = snakemake.params.positions
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()[positions]
queries = load_npz(snakemake.input.probes)["queries"]
logits, params = train_out_group(job, records, out_model_inputs(job.X, records, queries, positions), return_params=True)
save_npz(snakemake.output.logits, **out_model_arrays(logits, records, positions))
save_weights(snakemake, params)
log.info("trained out-models for records %s; logits %s", records.tolist(), logits.shape)
