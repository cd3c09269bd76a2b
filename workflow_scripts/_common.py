"""Shared by the workflow scripts: logging to the rule's log, the rule's thread count, and what the training
rules and the rules on the experiment's NNGP read."""

import logging
import sys
from pathlib import Path

# The `lood` package of this repository, importable also inside --sdm conda
# environments, where it is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def setup(snakemake) -> logging.Logger:
    """Log to snakemake.log[0] (and stderr), record uncaught errors there, cap BLAS threads at the rule's threads."""
    handlers = [logging.StreamHandler(sys.stderr)]
    if snakemake.log:
        handlers.append(logging.FileHandler(snakemake.log[0], mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    log = logging.getLogger(snakemake.rule)

    def hook(kind, value, tb):
        log.error("%s", value, exc_info=(kind, value, tb))

    sys.excepthook = hook

    from threadpoolctl import threadpool_limits

    # Kept alive for the whole script: NumPy/SciPy BLAS use only the rule's threads.
    setup.limits = threadpool_limits(limits=snakemake.threads)
    return log


def torch_threads(snakemake) -> None:
    """Torch intra-op threads follow the rule's `threads`."""
    import torch

    torch.set_num_threads(snakemake.threads)


def training_job(snakemake):
    """setup and torch_threads, then what every rule that trains networks reads.

    Returns (log, dataset, job): the rule's logger, dataset.npz (for the inputs the models are evaluated at)
    and the lood.empirical.training_job.TrainingJob of its X and y, the model of params.arch, the training settings of
    params.training with lr resolved (training.lr, or auto's step from input.lr, results/<experiment>/nn/lr.csv)
    and params.seed.
    """
    log = setup(snakemake)
    torch_threads(snakemake)
    from lood.empirical.step_size import resolved
    from lood.empirical.training_job import TrainingJob
    from lood.io import load_npz
    from lood.settings import Arch, Training

    dataset = load_npz(snakemake.input.dataset)
    training = resolved(Training.from_config(snakemake.params.training), snakemake.input.lr)
    arch = Arch.from_config(snakemake.params.arch)
    return log, dataset, TrainingJob(dataset["X"], dataset["y"], arch, training, snakemake.params.seed)


def save_weights(snakemake, params) -> None:
    """The trained parameters to output.weights, where the rule has one (training.save_weights)."""
    import torch

    if "weights" in snakemake.output.keys():
        torch.save(params, snakemake.output.weights)


def nngp_job(snakemake):
    """setup, then what every rule on the experiment's NNGP reads.

    Returns (log, nngp, sigma2, gp): the rule's logger, the settings of params.nngp, the experiment's σ²
    (input.sigma2, chosen by rule choose_sigma2) and the NNGP of input.dataset and params.arch at that σ²
    (lood.analytic.tables.prepare).
    """
    log = setup(snakemake)
    import pandas as pd

    from lood.analytic.sigma2 import read_sigma2
    from lood.analytic.tables import prepare
    from lood.io import load_npz
    from lood.settings import Arch, NNGPSettings

    dataset = load_npz(snakemake.input.dataset)
    nngp = NNGPSettings.from_config(snakemake.params.nngp)
    sigma2 = read_sigma2(pd.read_csv(snakemake.input.sigma2))
    gp = prepare(dataset["X"], dataset["y"], Arch.from_config(snakemake.params.arch), sigma2, nngp.block_size)
    return log, nngp, sigma2, gp
