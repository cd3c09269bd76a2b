from lood.empirical.step_size import lr_summary, lr_table
from lood.io import load_npz, save_csv
from lood.settings import Arch, Training

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
training = Training.from_config(snakemake.params.training)
table = lr_table(dataset["X"], dataset["y"], Arch.from_config(snakemake.params.arch), training, snakemake.params.seed)
save_csv(snakemake.output.lr, table)
for level, line in lr_summary(table.iloc[0]):
    log.log(level, "%s", line)
