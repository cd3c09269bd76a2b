from _common import setup

from lood.io import load_npz, save_csv
from lood.nngp import lood_all_table

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
nngp = snakemake.params.nngp
table = lood_all_table(dataset["X"], dataset["y"], snakemake.params.arch, nngp["sigma2"], block_size=nngp["block_size"])
save_csv(snakemake.output.lood_all, table)
log.info("KL-LOOD of all %d training records: median %.4g, max %.4g", len(table), table["kl"].median(), table["kl"].max())
