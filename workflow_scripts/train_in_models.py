import numpy as np
import pandas as pd
import torch

from lood.io import load_npz, save_npz
from lood.settings import Arch, Training
from lood.step_size import resolved  # training.lr, or auto's step (results/<experiment>/nn/lr.csv)
from lood.train import train_in_chunk

from _common import setup, torch_threads

log = setup(snakemake)
torch_threads(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
probes = load_npz(snakemake.input.probes)
R, T, d = probes["queries"].shape
# In-models are evaluated at every studied record, at every landscape query and at every
# training record (logits_train: what nngp.sigma2 = calibrate matches, docs/math.md §12).
# And at the held-out records (logits_test: the networks' test accuracy in the depth study, issue 14).
X_test = dataset.get("X_test", np.empty((0, d)))
n_train = len(dataset["X"])
eval_X = np.concatenate([dataset["X"][records], probes["queries"].reshape(R * T, d), dataset["X"], X_test])
model_ids = snakemake.params.model_ids
logits, params = train_in_chunk(
    dataset["X"],
    dataset["y"],
    Arch.from_config(snakemake.params.arch),
    resolved(Training.from_config(snakemake.params.training), snakemake.input.lr),
    snakemake.params.seed,
    model_ids,
    eval_X,
    return_params=True,
)
save_npz(
    snakemake.output.logits,
    model_ids=np.asarray(model_ids),
    records=records,
    logits_record=logits[:, :R],
    logits_probe=logits[:, R : R + R * T].reshape(len(model_ids), R, T, -1),
    logits_train=logits[:, R + R * T : R + R * T + n_train],
    logits_test=logits[:, R + R * T + n_train :],
)
if "weights" in snakemake.output.keys():
    torch.save(params, snakemake.output.weights)
log.info("trained %d in-models; logits %s", len(model_ids), logits.shape)
