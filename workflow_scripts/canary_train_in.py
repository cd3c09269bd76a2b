import pandas as pd

from lood.group_training import train_canary_in
from lood.io import load_npz, save_npz
from lood.settings import Arch, Training
from lood.step_size import resolved  # training.lr, or auto's step (results/<experiment>/nn/lr.csv)

from _common import setup, torch_threads

log = setup(snakemake)
torch_threads(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.canaries)["record"].to_numpy()
X, y = dataset["X"], dataset["y"]
arch = Arch.from_config(snakemake.params.arch)
training = resolved(Training.from_config(snakemake.params.training), snakemake.input.lr)
logits = train_canary_in(X, y, arch, training, snakemake.params.seed, X[records])
save_npz(snakemake.output.logits, records=records, logits_record=logits)
log.info("trained %d in-models on the canary dataset; logits %s", training.n_in, logits.shape)
