import numpy as np
import pandas as pd

from lood.checks import check_duplicate_records
from lood.group_training import train_with_copies
from lood.io import load_npz, save_npz
from lood.settings import Arch, GroupSettings, Training
from lood.step_size import resolved  # training.lr, or auto's step (results/<experiment>/nn/lr.csv)

from _common import setup, torch_threads

log = setup(snakemake)
torch_threads(snakemake)
dataset = load_npz(snakemake.input.dataset)
X, y = dataset["X"], dataset["y"]
studied = pd.read_csv(snakemake.input.records)["record"].to_numpy()
groups = GroupSettings.from_config(snakemake.params.groups)
records = check_duplicate_records(groups.duplicate_records, groups.duplicate_count, studied, len(X))
m = int(snakemake.wildcards.copies)
training = resolved(Training.from_config(snakemake.params.training), snakemake.input.lr)
logits = train_with_copies(
    X,
    y,
    Arch.from_config(snakemake.params.arch),
    training,
    snakemake.params.seed,
    records,
    m,
    [X[[r]] for r in records],
)
save_npz(snakemake.output.logits, records=records, m=np.int64(m), logits_record=logits[:, :, 0])
log.info("trained %d x %d in-models with %d copies of records %s", len(records), training.n_in, m, records.tolist())
