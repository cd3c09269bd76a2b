"""The size figure: mean |predicted AUC − attack AUC| and Spearman ρ(KL, attack AUC) per analytic model and spread."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

GAP_TARGET = 0.05  # the target for the mean absolute AUC gap


def size_figure(
    summaries: Sequence[pd.DataFrame], experiments: Sequence[str], nngp: Mapping
) -> tuple[plt.Figure, pd.DataFrame]:
    """Two panels over experiments (groups) and model x spread (bars); the configured choice filled, others hatched."""
    table = pd.concat([s.assign(experiment=e) for s, e in zip(summaries, experiments, strict=True)], ignore_index=True)
    variants = list(dict.fromkeys(zip(table["model"], table["spread"], strict=True)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(len(variants), 1)
    x = np.arange(len(experiments))
    for k, (model, spread) in enumerate(variants):
        part = (
            table[(table["model"] == model) & (table["spread"] == spread)].set_index("experiment").reindex(experiments)
        )
        chosen = model == nngp.get("model") and spread == nngp.get("spread")
        style = {"color": f"C{k}", "hatch": None if chosen else "//", "alpha": 1.0 if chosen else 0.6}
        label = f"{model}, spread {spread}" + (" (chosen)" if chosen else "")
        pos = x + (k - (len(variants) - 1) / 2) * width
        gap = part["mean_abs_gap"].to_numpy()
        axes[0].bar(
            pos, gap, width, yerr=[gap - part["mean_abs_gap_lo"], part["mean_abs_gap_hi"] - gap], label=label, **style
        )
        rho = part["spearman_r"].to_numpy()
        axes[1].bar(pos, rho, width, yerr=[rho - part["spearman_lo"], part["spearman_hi"] - rho], **style)
    axes[0].axhline(GAP_TARGET, color="k", ls="--", lw=1)
    axes[0].set(ylabel="mean |predicted AUC - attack AUC|", title="size agreement")
    axes[1].set(ylabel="Spearman rho(KL, attack AUC)", title="rank agreement", ylim=(min(0, axes[1].get_ylim()[0]), 1))
    for ax in axes:
        ax.set_xticks(x, experiments)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig, table
