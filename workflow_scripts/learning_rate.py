from lood.io import load_npz, save_csv
from lood.settings import Arch, Training
from lood.step_size import lr_table

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
training = Training.from_config(snakemake.params.training)
table = lr_table(dataset["X"], dataset["y"], Arch.from_config(snakemake.params.arch), training, snakemake.params.seed)
save_csv(snakemake.output.lr, table)
row = table.iloc[0]
log.info(
    "training.lr %s: lr %.4g = %.3g x the stability bound %.4g (%s, momentum %g; NTK on %d rows: "
    "lambda_max(Theta/n) %.4g, mean over minibatches of %d %.4g)",
    row["lr_setting"],
    row["lr"],
    row["fraction_of_bound"],
    row["bound"],
    row["loss"],
    row["momentum"],
    row["ntk_rows"],
    row["lambda_full"],
    row["batch_size"],
    row["lambda_batch"],
)
if row["fraction_of_bound"] > 1:
    log.warning(
        "training.lr is %.3g x the linearised stability bound: some models may diverge", row["fraction_of_bound"]
    )
