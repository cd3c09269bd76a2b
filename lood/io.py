"""Atomic writers (an output appears whole or not at all, so an interrupted run resumes), and the readers of
tables that several sides share."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Write a compressed .npz atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def save_csv(path: str | os.PathLike, table: pd.DataFrame) -> None:
    """Write a CSV atomically, without the index, floats at full precision."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.10g")


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an .npz into a dict."""
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def read_lr(path: str | Path) -> float:
    """The step a run uses, from the lr table (results/<experiment>/nn/lr.csv, lood.empirical.step_size.lr_table)."""
    from lood.errors import LoodInputError

    table = pd.read_csv(path)
    if len(table) != 1 or "lr" not in table or not np.isfinite(table["lr"].iloc[0]) or table["lr"].iloc[0] <= 0:
        raise LoodInputError(f"{path} is not an lr table with one positive lr; delete it so that it is rebuilt")
    return float(table["lr"].iloc[0])
