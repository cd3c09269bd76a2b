import numpy as np
import pandas as pd

from lood.io import load_npz, save_npz
from lood.train import train_out_group

from _common import save_weights, training_job

log, _, job = training_job(snakemake)
positions = snakemake.params.positions
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()[positions]
probes = load_npz(snakemake.input.probes)
# Each record's out-models are evaluated at that record and at its own landscape queries.
eval_X = [np.concatenate([job.X[[r]], probes["queries"][p]]) for r, p in zip(records, positions, strict=True)]
logits, params = train_out_group(job, records, eval_X, return_params=True)
save_npz(
    snakemake.output.logits,
    records=records,
    positions=np.asarray(positions),
    logits_record=logits[:, :, 0],
    logits_probe=logits[:, :, 1:],
)
save_weights(snakemake, params)
log.info("trained out-models for records %s; logits %s", records.tolist(), logits.shape)
