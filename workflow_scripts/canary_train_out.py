import pandas as pd

from lood.group_training import train_canary_out
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
logits = train_canary_out(X, y, arch, training, snakemake.params.seed, records, [X[[r]] for r in records])
save_npz(snakemake.output.logits, records=records, logits_record=logits[:, :, 0])
log.info("trained %d out-models for each of %d canaries", training.n_out, len(records))
