from _common import setup

from lood.io import load_npz, save_csv
from lood.nngp import landscape_table, prepare
from lood.settings import Arch, NNGPSettings

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
nngp = NNGPSettings.from_config(snakemake.params.nngp)
gp = prepare(dataset["X"], dataset["y"], Arch.from_config(snakemake.params.arch), nngp.sigma2, nngp.block_size)
table = landscape_table(gp, load_npz(snakemake.input.probes))
save_csv(snakemake.output.landscape, table)
log.info("landscape: %d rows", len(table))
