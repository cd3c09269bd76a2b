import numpy as np
import pandas as pd

from lood.io import load_npz, save_csv
from lood.settings import Arch
from lood.studies.depth_networks import NetworkOutputs, network_row, network_summary, networks_table, split_chunks

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
y_test = dataset.get("y_test", np.empty(0, dtype=np.int64))
networks = snakemake.params.networks
chunks = split_chunks(snakemake.input.in_logits, networks, snakemake.params.chunks_per_network)
rows = []
for name, arch, mia, lood, lr in zip(
    networks, snakemake.params.archs, snakemake.input.mia, snakemake.input.lood, snakemake.input.lr, strict=True
):
    outputs = NetworkOutputs(
        pd.read_csv(lr).iloc[0], pd.read_csv(mia), pd.read_csv(lood), [load_npz(f) for f in chunks[name]]
    )
    rows.append(network_row(name, Arch.from_config(arch), outputs, dataset["y"], y_test, snakemake.params.loss))
    log.info("%s", network_summary(rows[-1]))
save_csv(snakemake.output.table, networks_table(rows))
