"""How much the audit's top list depends on its σ² rule, on the data of a finished default workflow run.

Reads results/data/dataset.npz, results/<experiment>/nngp/sigma2.csv (the full workflow's
calibrate, from its 100 in-models) and results/<experiment>/nn/in/chunk*.npz (their logits on the
training records). Prints σ² by: the workflow's calibrate (100 in-models), the audit's calibrate
(the first 4 of them: the models the audit trains, same seeds), and the marginal likelihood (the
audit's training-free rule); then the top-1% and top-10% overlaps of the KL-LOOD of every record
between them (the audit's closed form at Q = {z}, one eigendecomposition).

Usage: .venv/bin/python bench/bench_audit_sigma2.py [--results /work/main/results] [--experiment relu]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Print the comparison."""
    import numpy as np
    import pandas as pd

    from lood.analytic.divergence import lood_at_records
    from lood.analytic.sigma2 import stack_train_logits
    from lood.analytic.spectral import spectral_fit
    from lood.io import load_npz
    from lood.settings import Arch, NNGPSettings
    from lood.studies.audit_sigma2 import calibrate_sigma2, marginal_likelihood_on, subset_eigen, top_overlap

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--experiment", default="relu")
    ap.add_argument("--models", type=int, default=4)
    args = ap.parse_args()
    data = load_npz(args.results / "data" / "dataset.npz")
    X, y = data["X"].reshape(len(data["X"]), -1), data["y"]
    arch = Arch(depth=2, width=1, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
    nngp = NNGPSettings.from_schema()
    idx = np.arange(len(X))
    eig, K_diag = subset_eigen(X, y, idx, arch, 512)
    chunks = [load_npz(p) for p in sorted((args.results / args.experiment / "nn" / "in").glob("chunk*.npz"))]
    logits = stack_train_logits(chunks)
    workflow = pd.read_csv(args.results / args.experiment / "nngp" / "sigma2.csv")
    rules = {
        f"calibrate, {len(logits)} in-models (the full workflow)": (
            float(workflow["sigma2"].iloc[0]),
            bool(workflow["at_edge"].iloc[0]),
        ),
    }
    cal = calibrate_sigma2(eig, logits[: args.models], nngp, "mse")
    rules[f"calibrate, {args.models} in-models (the audit)"] = (cal["sigma2"], cal["at_edge"])
    ml = marginal_likelihood_on(eig, nngp)
    rules["marginal likelihood (training-free)"] = (ml["sigma2"], ml["at_edge"])
    print(
        f"n={len(X)}, d={X.shape[1]}, C={eig.Y.shape[1]}; grid {nngp.grid_min:g}..{nngp.grid_max:g}, "
        f"{nngp.grid_points} points"
    )
    kl = {}
    for name, (s2, edge) in rules.items():
        kl[name] = lood_at_records(spectral_fit(eig, s2), K_diag, idx)["kl"]
        print(f"  sigma2 = {s2:.4g}{' (grid edge)' if edge else ''}: {name}")
    names = list(rules)
    for frac in (0.01, 0.10):
        k = max(1, int(np.ceil(frac * len(X))))
        print(f"top {frac:.0%} ({k} records) overlap:")
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                print(f"  {names[i]} vs {names[j]}: {top_overlap(kl[names[i]], kl[names[j]], frac):.2f}")


if __name__ == "__main__":
    main()
