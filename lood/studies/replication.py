"""A full-size replication of the attack: a second, independent set of n_in in- and n_out out-models per record.

The experiment's networks derive from the base seed; the replication's from the base seed
``replication_seed(base)`` = int_seed(base, 'replication', 0), through the same seed paths (so model m of
the replication is as independent of the experiment's model m as of any other). Same data, same
records (the first ``replication.records`` studied ones), same training settings, same attack
(lood.empirical.mia.mia_table, its split seeds also under the replication's base seed).

With two runs of the attack at full size on the same records, the noise-free attack t is reached in three
ways (docs/math.md §15): the test-retest ρ(run 1, run 2) (the
reliability of one run), the LOOD's ρ with one run disattenuated by it, and the LOOD's ρ against the mean
of the two runs (a lower-noise measure of t).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd

from lood.empirical.mia import AttackedRecords, mia_table
from lood.empirical.model_bootstrap import ModelScores, model_resampled_measures
from lood.empirical.train import train_in_chunk, train_out_group
from lood.empirical.training_job import TrainingJob
from lood.errors import LoodInputError
from lood.seeds import int_seed
from lood.stats import correlation, halves_array, replication_bootstrap, signed_sqrt

log = logging.getLogger(__name__)


def replication_seed(base_seed: int) -> int:
    """The base seed of the replication's networks and attack splits."""
    return int_seed(base_seed, "replication", 0)


def replication_records(records: pd.DataFrame, count: int) -> pd.DataFrame:
    """The first `count` studied records (records.csv is in seeded random order), with their labels."""
    if int(count) < 3:
        raise LoodInputError(f"replication.records must be >= 3 for a correlation, got {count}")
    if int(count) > len(records):
        raise LoodInputError(
            f"replication.records = {count} but only {len(records)} records are studied: "
            "lower it or raise records.count"
        )
    return records.iloc[: int(count)].reset_index(drop=True)


def train_replication(job: TrainingJob, records: np.ndarray) -> dict[str, np.ndarray]:
    """The replication's logits at the records: in (n_in, R, C), trained on all of X; out (R, n_out, C), each
    without its record."""
    rep = replace(job, base_seed=replication_seed(job.base_seed))
    records = np.asarray(records, dtype=np.int64)
    log.info("replication: %d in-models on all %d rows", job.training.n_in, len(job.X))
    in_logits = train_in_chunk(rep, range(int(job.training.n_in)), job.X[records])
    out = []
    for k, r in enumerate(records):
        log.info("replication: %d out-models without record %d (%d of %d)", job.training.n_out, r, k + 1, len(records))
        out.append(train_out_group(rep, [int(r)], [job.X[[int(r)]]])[0, :, 0])
    return {"records": records, "in_logits": in_logits, "out_logits": np.stack(out)}


def replication_attack(models: dict[str, np.ndarray], labels: np.ndarray, splits: int, base_seed: int) -> pd.DataFrame:
    """lood.empirical.mia.mia_table on the replication's models, split seeds under replication_seed(base_seed)."""
    attacked = AttackedRecords(models["records"], labels, models["in_logits"], models["out_logits"])
    return mia_table(attacked, splits, replication_seed(base_seed))


def _rename(stats: dict[str, float], prefix: str) -> dict[str, float]:
    words = {"half_minus_rep": "one_run_minus_retest", "half": "one_run", "replication": "retest"}
    out = {}
    for k, v in stats.items():
        for old, new in words.items():
            if old in k:
                k = k.replace(old, new)
                break
        out[f"{prefix}{k}"] = v
    return out


MEASURES = (("auc", "kl"), ("auc", "auc_nngp"), ("sqrt_diff", "sqrt_mse"))


def replication_tables(
    run1: pd.DataFrame,
    run2: pd.DataFrame,
    lood: pd.DataFrame,
    halves: pd.DataFrame,
    scores: ModelScores,
    n_boot: int,
    base_seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-record table, summary) of the two full-size runs (run1: the experiment's mia.csv; run2: replication_attack).

    Summary, one row per (measure, predictor): the test-retest correlation of the measure with its CI; the
    predictor's correlation with one run (mean of the two), minus the retest, and disattenuated, with paired
    CIs (lood.stats.replication_bootstrap, K = 1); its correlation with the mean of the two runs; the same
    comparison at half size on the same records (the experiment's halves); and the model bootstrap's SD of a
    record's measure (lood.empirical.model_bootstrap, run 1's models) beside the SD a rerun shows,
    √(mean (run 1 − run 2)² / 2).
    """
    records = run2["record"].to_numpy()
    df = pd.DataFrame({"record": records})
    df = df.merge(run1[["record", "auc", "diff"]], on="record", validate="one_to_one")
    df = df.merge(run2[["record", "auc", "diff"]], on="record", suffixes=("_1", "_2"), validate="one_to_one")
    df = df.merge(lood[["record", "kl", "mse", "auc_nngp"]], on="record", validate="one_to_one")
    for k in ("1", "2"):
        df[f"sqrt_diff_{k}"] = signed_sqrt(df[f"diff_{k}"])
    df["sqrt_mse"] = np.sqrt(df["mse"])
    pos = pd.Series(np.arange(len(scores.records)), index=scores.records).reindex(records).to_numpy(dtype=int)
    boot = model_resampled_measures(scores, n_boot, base_seed)
    df["auc_sd_models"] = boot["auc_shift"][:, pos].std(axis=0)
    df["sqrt_diff_sd_models"] = signed_sqrt(boot["diff"][:, pos]).std(axis=0)
    rows = []
    for key, (measure, predictor) in enumerate(MEASURES):
        x = np.log10(df[predictor]) if predictor == "kl" else df[predictor]
        x = x.to_numpy(dtype=float)
        a, b = df[f"{measure}_1"].to_numpy(), df[f"{measure}_2"].to_numpy()
        row = {"measure": measure, "predictor": predictor, "n": len(df)}
        retest = correlation(a, b, n_boot, base_seed, 200 + key)
        row |= {f"retest_{m}_{s}": retest[f"{m}_{s}"] for m in ("pearson", "spearman") for s in ("r", "lo", "hi")}
        row |= _rename(replication_bootstrap(x, np.stack([a, b])[None], n_boot, base_seed, 300 + key), "")
        mean_run = correlation(x, (a + b) / 2, n_boot, base_seed, 400 + key)
        row |= {
            f"mean_of_runs_{m}_{s}": mean_run[f"{m}_{s}"] for m in ("pearson", "spearman") for s in ("r", "lo", "hi")
        }
        h = halves[halves["record"].isin(records)]
        if not h.empty:
            xs, reps = halves_array(pd.Series(x, index=records), h, "auc" if measure == "auc" else "diff")
            reps = reps if measure == "auc" else signed_sqrt(reps)
            half = replication_bootstrap(xs, reps, n_boot, base_seed, 500 + key)
            row |= {f"half_size_{k}": v for k, v in half.items() if k != "n"}
        row["sd_model_bootstrap"] = float(np.sqrt(np.mean(df[f"{measure}_sd_models"] ** 2)))
        row["sd_rerun"] = float(np.sqrt(np.mean((a - b) ** 2) / 2))
        rows.append(row)
        log.info(
            "%s vs %s, %d records at full size: retest rho %.2f, rho(LOOD, one run) %.2f, disattenuated %.2f, "
            "rho(LOOD, mean of runs) %.2f; SD of a record's measure: model bootstrap %.3g, rerun %.3g",
            predictor, measure, len(df), row["retest_spearman_r"], row["spearman_one_run"],
            row["spearman_disattenuated"], row["mean_of_runs_spearman_r"], row["sd_model_bootstrap"], row["sd_rerun"],
        )  # fmt: skip
    return df, pd.DataFrame(rows)
