import numpy as np
import pandas as pd
import torch

from lood.io import load_npz, save_npz
from lood.settings import Arch, Training
from lood.step_size import resolved  # training.lr, or auto's step (results/<experiment>/nn/lr.csv)
from lood.train import train_out_group

from _common import setup, torch_threads

log = setup(snakemake)
torch_threads(snakemake)
dataset = load_npz(snakemake.input.dataset)
positions = snakemake.params.positions
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()[positions]
probes = load_npz(snakemake.input.probes)
# Each record's out-models are evaluated at that record and at its own landscape queries.
eval_X = [np.concatenate([dataset["X"][[r]], probes["queries"][p]]) for r, p in zip(records, positions, strict=True)]
logits, params = train_out_group(
    dataset["X"],
    dataset["y"],
    Arch.from_config(snakemake.params.arch),
    resolved(Training.from_config(snakemake.params.training), snakemake.input.lr),
    snakemake.params.seed,
    records,
    eval_X,
    return_params=True,
)
save_npz(
    snakemake.output.logits,
    records=records,
    positions=np.asarray(positions),
    logits_record=logits[:, :, 0],
    logits_probe=logits[:, :, 1:],
)
if "weights" in snakemake.output.keys():
    torch.save(params, snakemake.output.weights)
log.info("trained out-models for records %s; logits %s", records.tolist(), logits.shape)
