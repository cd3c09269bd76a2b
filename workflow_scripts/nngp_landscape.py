from _common import setup

from lood.io import load_npz, save_csv
from lood.nngp import landscape_table

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
probes = load_npz(snakemake.input.probes)
nngp = snakemake.params.nngp
table = landscape_table(dataset["X"], dataset["y"], probes, snakemake.params.arch, nngp["sigma2"], block_size=nngp["block_size"])
save_csv(snakemake.output.landscape, table)
log.info("landscape: %d rows", len(table))
