"""The NNGP side of the canary study: LOOD of every row (canaries marked), of the canaries, and their reconstructions.

The σ² is the experiment's own, chosen on the data without canaries: the canaries must not tune the model.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import numpy as np
import pandas as pd

from lood.analytic.query import optimise_queries
from lood.analytic.tables import NNGP, lood_all_table, lood_table
from lood.data.canaries import reconstruction_table, record_kinds
from lood.settings import NNGPSettings, QuerySettings


class CanaryTables(NamedTuple):
    """What the canary study's NNGP rule writes."""

    lood_all: pd.DataFrame  # every row of the augmented set, with its kind (real, noise, flipped)
    lood: pd.DataFrame  # the canaries, with the NNGP AUC
    reconstruction: pd.DataFrame  # each canary's optimised query against the canary
    queries: dict[str, np.ndarray]  # records, optimised queries and their starts, for the figure


def canary_tables(
    gp: NNGP, canaries: pd.DataFrame, nngp: NNGPSettings, query: QuerySettings, sigma2: float, seed: int
) -> CanaryTables:
    """The canaries' LOOD among all rows and their reconstructions; the ascent starts from noise whatever query.init."""
    records = canaries["record"].to_numpy()
    lood_all = lood_all_table(gp).assign(kind=record_kinds(gp.fit.n, canaries), sigma2=sigma2)
    lood = lood_table(gp, records, nngp.auc_samples, seed).merge(
        canaries[["record", "kind"]], on="record", validate="one_to_one"
    )
    table, per_record = optimise_queries(gp, records, replace(query, init="noise"), seed)
    reconstruction = reconstruction_table(gp.X, table, {r: v["query"] for r, v in per_record.items()}, canaries)
    queries = {
        "records": records,
        "queries": np.stack([per_record[int(r)]["query"] for r in records]),
        "starts": np.stack([per_record[int(r)]["start"] for r in records]),
    }
    return CanaryTables(lood_all, lood.assign(sigma2=sigma2), reconstruction.assign(sigma2=sigma2), queries)


def canary_summary_line(tables: CanaryTables) -> str:
    """One log line: the median KL of real rows and of each canary kind."""
    real = tables.lood_all[tables.lood_all.kind == "real"]["kl"]
    by_kind = tables.lood.groupby("kind")["kl"].median().to_dict()
    return f"KL-LOOD: real median {real.median():.4g}, canaries by kind {by_kind}"
