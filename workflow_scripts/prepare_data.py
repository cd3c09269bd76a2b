import numpy as np
from _common import setup

from lood.data import prepare_dataset
from lood.io import save_npz

log = setup(snakemake)
archive = snakemake.input.source if snakemake.params.data["source"] == "cifar10" else None
dataset = prepare_dataset(snakemake.params.data, snakemake.params.seed, archive=archive)
save_npz(snakemake.output.dataset, **dataset)
labels, counts = np.unique(dataset["y"], return_counts=True)
log.info("dataset: X %s, records per class %s", dataset["X"].shape, dict(zip(labels.tolist(), counts.tolist())))
