"""Records drawn as what they are: images as images, tabular records as feature bars."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def is_image(shape: tuple[int, ...]) -> bool:
    """Whether rows of this shape are images (2-D or more); a 1-D shape is a tabular record, a vector of features.

    prepare_dataset stores (d,) as the image shape of a dataset without one (a user's .npz of feature vectors).
    """
    return len(tuple(shape)) >= 2


def as_image(row: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A data row as a displayable image in [0, 1] (CHW rows become HWC); an image shape only (see is_image)."""
    if not is_image(shape):
        raise ValueError(f"shape {tuple(shape)} is not an image shape: draw tabular records with show_features")
    img = np.clip(np.asarray(row, dtype=float).reshape(shape), 0.0, 1.0)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = np.moveaxis(img, 0, -1)
    return img.squeeze()


def show_image(ax, img: np.ndarray, title: str) -> None:
    ax.imshow(img, cmap="gray_r" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def show_features(ax, values: np.ndarray, title: str, lim: float | None = None) -> None:
    """A tabular record as horizontal bars of its feature values, feature 0 at the top; x in [-lim, lim] if given."""
    v = np.asarray(values, dtype=float).ravel()
    ax.barh(np.arange(v.size), v, height=0.8, color="C0", alpha=0.7)
    ax.axvline(0.0, color="0.3", lw=0.5)
    ax.set_ylim(v.size - 0.5, -0.5)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    if lim:
        ax.set_xlim(-lim, lim)
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=7)


def show_record(ax, row: np.ndarray, shape: tuple[int, ...], title: str, lim: float | None = None) -> None:
    """A record as what it is: an image (values clipped to [0, 1]) or, for tabular data, bars of its features."""
    if is_image(shape):
        show_image(ax, as_image(row, shape), title)
    else:
        show_features(ax, row, title, lim)


def feature_limit(rows: np.ndarray) -> float | None:
    """One symmetric x range for bar panels drawn side by side, so that their bars compare; None if all zero."""
    top = float(np.max(np.abs(rows))) if np.size(rows) else 0.0
    return 1.05 * top if top > 0 else None


TABULAR_NOTE = "tabular records: each panel shows a record's feature values as horizontal bars (feature 0 at the top)"
