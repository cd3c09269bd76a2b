"""The networks' side of leave-group-out: the attack on z when its whole group G is left out, beside the NNGP.

The in-models are the experiment's own (trained on F); the out-models are trained on F − G
(lood.studies.group_networks.train_without_groups). z is attacked exactly as the single-record
attack does (lood.empirical.mia.mia_record, seed int_seed(base, 'mia', z): the same half-splits), so
the group attack and the single one are paired per record. The group-level attack scores every
member at once: the likelihood-ratio attack on the members' logits concatenated (k·C features).

Intervals: a record's AUC is a mean over half-splits; its CI is auc ± 1.96 √v, v the mean over
splits of DeLong's variance of one split's AUC. The mean over splits varies no more than one split
does, so the interval is conservative (wider than the truth). Summaries over records carry
percentile-bootstrap CIs over records (seeded, lood.seeds role 'bootstrap').
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from lood import seeds
from lood.empirical.mia import AttackedRecords, _gaussian_logpdf, half_splits, mia_record, mia_table
from lood.errors import LoodInputError
from lood.stats import correlation

Z95 = 1.959963984540054


def delong_variance(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """DeLong's variance of the AUC of positives vs negatives along the last axis (placement values, ties ½)."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    gt = (pos[..., :, None] > neg[..., None, :]) + 0.5 * (pos[..., :, None] == neg[..., None, :])
    v_pos, v_neg = gt.mean(axis=-1), gt.mean(axis=-2)
    return np.var(v_pos, axis=-1, ddof=1) / pos.shape[-1] + np.var(v_neg, axis=-1, ddof=1) / neg.shape[-1]


def attack_interval(feat_in: np.ndarray, feat_out: np.ndarray, splits: int, seed: int) -> dict[str, float]:
    """The likelihood-ratio attack on features (M, d) over seeded half-splits: mean AUC and its conservative 95% CI."""
    feat_in, feat_out = np.asarray(feat_in, dtype=np.float64), np.asarray(feat_out, dtype=np.float64)
    ref_in, held_in, ref_out, held_out = half_splits(len(feat_in), len(feat_out), splits, seed)
    held = np.concatenate([feat_in[held_in], feat_out[held_out]], axis=1)
    score = _gaussian_logpdf(feat_in[ref_in], held) - _gaussian_logpdf(feat_out[ref_out], held)
    n_pos = held_in.shape[1]
    pos, neg = score[:, :n_pos], score[:, n_pos:]
    gt = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    auc = float(gt.mean())
    half = Z95 * float(np.sqrt(np.mean(delong_variance(pos, neg))))
    return {"auc": auc, "lo": max(auc - half, 0.0), "hi": min(auc + half, 1.0)}


def auc_intervals(attacked: AttackedRecords, splits: int, base_seed: int) -> pd.DataFrame:
    """Per record: the attack's conservative 95% CI (auc_lo, auc_hi), on mia_table's splits (seed 'mia', record)."""
    rows = []
    for j, r in enumerate(attacked.records):
        ci = attack_interval(
            np.asarray(attacked.in_logits)[:, j],
            attacked.out_logits[j],
            splits,
            seeds.int_seed(base_seed, "mia", int(r)),
        )
        rows.append({"record": int(r), "auc_lo": ci["lo"], "auc_hi": ci["hi"]})
    return pd.DataFrame(rows, columns=["record", "auc_lo", "auc_hi"])


def duplicate_mia_table(
    records: np.ndarray, labels: np.ndarray, in_by_m: dict, out_logits: np.ndarray, splits: int, base_seed: int
) -> pd.DataFrame:
    """mia_table of the duplicated records at every m (in-models with m copies, shared out-models), with CIs."""
    parts = []
    for m, in_logits in sorted(in_by_m.items()):
        attacked = AttackedRecords(records, labels, in_logits, out_logits)
        table = mia_table(attacked, splits, base_seed).merge(auc_intervals(attacked, splits, base_seed), on="record")
        parts.append(table.assign(m=int(m)))
    return pd.concat(parts, ignore_index=True)


def canary_mia_table(rows: pd.DataFrame, in_file, out_file, splits: int, base_seed: int) -> pd.DataFrame:
    """The attack at every attacked row of the canary set (canaries and real records: the same models), with CIs."""
    records = rows["record"].to_numpy()
    for name, part in (("in", in_file), ("out", out_file)):
        if not np.array_equal(part["records"], records):
            raise LoodInputError(
                f"canary {name}-models cover rows {np.asarray(part['records']).tolist()}, expected "
                f"{records.tolist()}: delete results/<experiment>/canary and rerun"
            )
    attacked = AttackedRecords(records, rows["label"].to_numpy(), in_file["logits_record"], out_file["logits_record"])
    table = mia_table(attacked, splits, base_seed).merge(auc_intervals(attacked, splits, base_seed), on="record")
    return table.merge(rows[["record", "kind"]], on="record", validate="one_to_one")


def group_attack_table(
    kind: str,
    keys: Sequence[tuple[int, int]],
    members: Sequence[np.ndarray],
    out_logits: Sequence[np.ndarray],
    in_train: np.ndarray,
    y: np.ndarray,
    splits: int,
    base_seed: int,
) -> pd.DataFrame:
    """One row per group (record z, size k): the attack on z and on all of G, in-models `in_train` (n_in, n, C).

    out_logits[g] (n_out, k, C): group g's out-models at its members, z first.
    """
    rows = []
    for (r, k), G, out in zip(keys, members, out_logits, strict=True):
        G, out = np.asarray(G, dtype=np.int64), np.asarray(out, dtype=np.float64)
        if G[0] != r or out.shape[1] != len(G):
            raise LoodInputError(f"group of record {r}: members {G.tolist()} and out-logits {out.shape} disagree")
        seed = seeds.int_seed(base_seed, "mia", int(r))
        in_z = np.asarray(in_train[:, r], dtype=np.float64)
        single = mia_record(in_z, out[:, 0], int(y[r]), splits, seed)
        ci = attack_interval(in_z, out[:, 0], splits, seed)
        whole = attack_interval(in_train[:, G].reshape(len(in_train), -1), out.reshape(len(out), -1), splits, seed)
        rows.append(
            {
                "kind": kind,
                "record": int(r),
                "k": int(k),
                "members": " ".join(map(str, G.tolist())),
                "auc": single["auc"],
                "auc_lo": ci["lo"],
                "auc_hi": ci["hi"],
                "diff": single["diff"],
                "diff_std": single["diff_std"],
                "auc_all_members": whole["auc"],
                "auc_all_members_lo": whole["lo"],
                "auc_all_members_hi": whole["hi"],
            }
        )
    return pd.DataFrame(rows)


def ratio_of_means(num: np.ndarray, den: np.ndarray, n_boot: int, base_seed: int, key: int) -> tuple[float, ...]:
    """mean(num) / mean(den) over records, with a percentile-bootstrap 95% CI (records resampled in pairs)."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    ok = np.isfinite(num) & np.isfinite(den)
    num, den = num[ok], den[ok]
    if len(num) < 2 or den.mean() == 0:
        return float("nan"), float("nan"), float("nan")
    idx = seeds.rng(base_seed, "bootstrap", key).integers(0, len(num), size=(int(n_boot), len(num)))
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = num[idx].mean(axis=1) / den[idx].mean(axis=1)
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return float(num.mean() / den.mean()), float(lo), float(hi)


def median_ci(values: np.ndarray, n_boot: int, base_seed: int, key: int) -> tuple[float, float, float]:
    """Median over records with a percentile-bootstrap 95% CI."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan"), float("nan"), float("nan")
    idx = seeds.rng(base_seed, "bootstrap", key).integers(0, len(v), size=(int(n_boot), len(v)))
    lo, hi = np.percentile(np.median(v[idx], axis=1), [2.5, 97.5])
    return float(np.median(v)), float(lo), float(hi)


def merge_sides(attack: pd.DataFrame, neighbours: pd.DataFrame, mia: pd.DataFrame, lood: pd.DataFrame) -> pd.DataFrame:
    """The network group attack per (kind, record, k) beside the single attack (mia.csv) and the NNGP."""
    nngp = neighbours[
        ["kind", "record", "k", "members", "kl_group", "kl_group_at_record", "kl_record", "mse_group_at_record"]
        + ["mse_record", "ratio", "auc_group_at_record"]
    ].rename(columns={"members": "members_nngp", "ratio": "nngp_superadditivity", "auc_group_at_record": "auc_nngp"})
    df = attack.merge(nngp, on=["kind", "record", "k"], how="left", validate="one_to_one")
    if (df["members"] != df["members_nngp"]).any():
        raise LoodInputError(
            "the networks' groups are not neighbours.csv's: groups.network_kinds must be in groups.neighbour_kinds "
            "and groups.network_sizes in groups.neighbour_sizes (else delete results/<experiment>/group and rerun)"
        )
    df = df.drop(columns="members_nngp")
    df = df.merge(
        mia[["record", "auc", "diff"]].rename(columns={"auc": "auc_single", "diff": "diff_single"}),
        on="record",
        how="left",
        validate="many_to_one",
    )
    return df.merge(
        lood[["record", "auc_nngp"]].rename(columns={"auc_nngp": "auc_nngp_single"}),
        on="record",
        how="left",
        validate="many_to_one",
    )


def group_summary(merged: pd.DataFrame, n_boot: int, base_seed: int) -> pd.DataFrame:
    """Per kind and k (and k = 0: all sizes): the networks' ratio to the single attack beside the NNGP's, with CIs.

    excess ratio = mean(AUC_G − ½) / mean(AUC_single − ½) over records, for the networks and for the NNGP's
    predicted AUCs; distance ratio = mean diff_G / mean diff_single (networks) beside mean mse_G / mean mse
    at the record (NNGP: the same squared mean shift, up to a constant that cancels); rank agreement:
    Spearman ρ(NNGP AUC_G, network AUC_G) across the groups (bootstrap CI), and ρ(NNGP KL at Q = G, the
    networks' all-members AUC).
    """
    rows = []
    for key, (kind, k) in enumerate(
        [(kind, k) for kind in merged["kind"].unique() for k in [*sorted(merged["k"].unique()), 0]]
    ):
        d = merged[(merged.kind == kind) & ((merged.k == k) if k else True)]
        b = 100 * key
        net = ratio_of_means(d["auc"] - 0.5, d["auc_single"] - 0.5, n_boot, base_seed, b + 1)
        gp = ratio_of_means(d["auc_nngp"] - 0.5, d["auc_nngp_single"] - 0.5, n_boot, base_seed, b + 2)
        net_d = ratio_of_means(d["diff"], d["diff_single"], n_boot, base_seed, b + 3)
        gp_d = ratio_of_means(d["mse_group_at_record"], d["mse_record"], n_boot, base_seed, b + 4)
        gain = median_ci(d["auc"] - d["auc_single"], n_boot, base_seed, b + 5)
        gain_gp = median_ci(d["auc_nngp"] - d["auc_nngp_single"], n_boot, base_seed, b + 6)
        rank = correlation(d["auc_nngp"].to_numpy(), d["auc"].to_numpy(), n_boot, base_seed, b + 7)
        rows.append(
            {
                "kind": kind,
                "k": int(k),
                "groups": len(d),
                "net_auc_median": float(d["auc"].median()),
                "net_auc_single_median": float(d["auc_single"].median()),
                "nngp_auc_median": float(d["auc_nngp"].median()),
                **_triple("net_excess_ratio", net),
                **_triple("nngp_excess_ratio", gp),
                **_triple("net_diff_ratio", net_d),
                **_triple("nngp_mse_ratio", gp_d),
                **_triple("net_auc_gain_median", gain),
                **_triple("nngp_auc_gain_median", gain_gp),
                "net_groups_above_single": int(np.sum(d["auc_lo"] > d["auc_single"])),
                "nngp_superadditivity_median": float(d["nngp_superadditivity"].median()),
                "rank_spearman": rank["spearman_r"],
                "rank_spearman_lo": rank["spearman_lo"],
                "rank_spearman_hi": rank["spearman_hi"],
                "rank_spearman_all_members": float(st.spearmanr(d["kl_group"], d["auc_all_members"]).statistic)
                if len(d) > 2 and np.ptp(d["kl_group"]) > 0 and np.ptp(d["auc_all_members"]) > 0
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def _triple(name: str, values: tuple[float, ...]) -> dict[str, float]:
    return {name: values[0], f"{name}_lo": values[1], f"{name}_hi": values[2]}


def group_networks_tables(
    out_files: Sequence,
    in_train: np.ndarray,
    y: np.ndarray,
    neighbours: pd.DataFrame,
    mia: pd.DataFrame,
    lood: pd.DataFrame,
    kinds: Sequence[str],
    splits: int,
    n_boot: int,
    base_seed: int,
    log=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-group table, summary) from the group out-models' files (group_out_arrays, one per kind in `kinds`)."""
    tables = []
    for kind, arrays in zip(kinds, out_files, strict=True):
        for k in np.asarray(arrays["sizes"]).tolist():
            members = np.asarray(arrays[f"members_k{k}"])
            keys = [(int(g[0]), int(k)) for g in members]
            logits = np.asarray(arrays[f"logits_k{k}"])
            tables.append(group_attack_table(kind, keys, list(members), list(logits), in_train, y, splits, base_seed))
    merged = merge_sides(pd.concat(tables, ignore_index=True), neighbours, mia, lood)
    summary = group_summary(merged, n_boot, base_seed)
    if log is not None:
        cols = [
            "kind",
            "k",
            "net_excess_ratio",
            "nngp_excess_ratio",
            "net_diff_ratio",
            "nngp_mse_ratio",
            "rank_spearman",
        ]
        log.info("group attack, networks beside the NNGP:\n%s", summary[cols].round(3).to_string(index=False))
    return merged, summary
