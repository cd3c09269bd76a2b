"""Shared by the workflow scripts: logging to the rule's log, and the rule's thread count."""

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
