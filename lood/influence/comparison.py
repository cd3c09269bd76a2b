"""The influence scores beside the NNGP's mean-distance LOOD and the networks' prediction difference.

Kept apart from lood.influence.baselines (which needs torch) so that the influence figure can join the
three tables itself: the influence scores are computed without the attack's out-models, and the join
happens where all three are at hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from lood.errors import LoodInputError

ESTIMATORS = ["tracin", "influence", "influence_prediction"]
# Means over influence.networks networks (`networks`), and the same estimators on the first network alone (`_one`).
SCORE_COLUMNS = ["record", *ESTIMATORS, *(f"{e}_one" for e in ESTIMATORS), "networks"]
COMPARISON_COLUMNS = [*SCORE_COLUMNS, "lood_mse", "diff_nn"]


def _columns(table: pd.DataFrame, name: str, columns: Sequence[str]) -> pd.DataFrame:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise LoodInputError(f"the {name} table lacks column(s) {missing}; it has {list(table.columns)}")
    twice = table["record"][table["record"].duplicated()]
    if len(twice):
        raise LoodInputError(f"the {name} table lists record(s) {twice.tolist()[:5]} more than once")
    return table[list(columns)]


def comparison_table(scores: pd.DataFrame, lood: pd.DataFrame, mia: pd.DataFrame) -> pd.DataFrame:
    """The influence scores beside the mean-distance LOOD (`lood_mse`) and the NN prediction difference (`diff_nn`).

    `scores` is `influence_table`'s, `lood` the NNGP table (column `mse`), `mia` the MIA
    table (column `diff`); rows follow `scores`, and every one of its records must be in both others.
    """
    scores = _columns(scores, "influence scores", SCORE_COLUMNS)
    lood = _columns(lood, "NNGP LOOD", ["record", "mse"]).rename(columns={"mse": "lood_mse"})
    mia = _columns(mia, "MIA", ["record", "diff"]).rename(columns={"diff": "diff_nn"})
    for name, other in (("NNGP LOOD", lood), ("MIA", mia)):
        absent = sorted(set(scores["record"]) - set(other["record"]))
        if absent:
            raise LoodInputError(f"the {name} table lacks record(s) {absent[:5]}: rerun the workflow to rebuild it")
    table = scores.merge(lood, on="record", how="left").merge(mia, on="record", how="left")
    return table[COMPARISON_COLUMNS]
