from pathlib import Path

import numpy as np

from lood.data.prepare import prepare_dataset
from lood.io import save_npz

from _common import setup

log = setup(snakemake)
source = snakemake.params.data["source"]
path = None  # CIFAR-10: the archive; Fashion-MNIST: the directory holding the idx files
if source == "cifar10":
    path = snakemake.input.source
elif source == "fashion_mnist":
    path = Path(snakemake.input.source[0]).parent
dataset = prepare_dataset(snakemake.params.data, snakemake.params.seed, source_path=path)
save_npz(snakemake.output.dataset, **dataset)
labels, counts = np.unique(dataset["y"], return_counts=True)
X = dataset["X"]
log.info("dataset: X %s, records per class %s", X.shape, dict(zip(labels.tolist(), counts.tolist(), strict=True)))
log.info(
    "inputs (normalise: %s, applied: %s): values in [%.3g, %.3g], record norms median %.3g (min %.3g, max %.3g)",
    snakemake.params.data["normalise"],
    dataset["normalise"],
    X.min(),
    X.max(),
    *np.percentile(np.linalg.norm(X, axis=1), [50, 0, 100]),
)
