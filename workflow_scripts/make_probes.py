import pandas as pd
from _common import setup

from lood.data import make_probes
from lood.io import load_npz, save_npz

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
probes = make_probes(dataset["X"], records, snakemake.params.t, snakemake.params.seed)
save_npz(snakemake.output.probes, **probes)
log.info("probes: %s queries", probes["queries"].shape)
