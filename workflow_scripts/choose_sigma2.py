from lood.analytic.sigma2 import experiment_sigma2, stack_train_logits
from lood.io import load_npz, save_csv
from lood.settings import Arch, NNGPSettings

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
nngp = NNGPSettings.from_config(snakemake.params.nngp)
logits = stack_train_logits([load_npz(f) for f in snakemake.input.in_logits]) if nngp.rule == "calibrate" else None
chosen, curve = experiment_sigma2(
    dataset["X"],
    dataset["y"],
    Arch.from_config(snakemake.params.arch),
    nngp,
    logits,
    snakemake.params.loss,
    allow_edge=snakemake.params.checks["allow_sigma2_at_edge"],
)
save_csv(snakemake.output.sigma2, chosen)
save_csv(snakemake.output.curve, curve)
row = chosen.iloc[0]
log.info(
    "sigma2 = %.4g (rule %s, loss %s, objective %.4g, scale %.4g)",
    row["sigma2"],
    row["rule"],
    row["loss"],
    row["objective"],
    row["scale"],
)
if row["gate"]:
    log.warning("continuing (checks.allow_sigma2_at_edge): %s", row["gate"])
