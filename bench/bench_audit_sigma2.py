"""How much the audit's top list depends on its σ² rule, on the data of a finished default workflow run.

Reads results/data/dataset.npz, results/<experiment>/nngp/sigma2.csv (the full workflow's
calibrate, from its 100 in-models) and results/<experiment>/nn/in/chunk*.npz (their logits on the
training records). Prints σ² by: the workflow's calibrate (100 in-models), the audit's calibrate
(the first 4 of them: the models the audit trains, same seeds), and the marginal likelihood (the
audit's training-free rule); then the top-1% and top-10% overlaps of the KL-LOOD of every record
between them (the audit's closed form at Q = {z}, one eigendecomposition).

With --fashion N instead: the audit itself (lood.studies.audit, σ² by calibrate from 4 in-models
trained on all N records, the config.yaml model and training with lr auto) on N Fashion-MNIST
training records (10 classes, seeded subset); prints its σ² rules and their top-1% overlap.

Usage: .venv/bin/python bench/bench_audit_sigma2.py [--results /work/main/results] [--experiment relu]
       .venv/bin/python bench/bench_audit_sigma2.py --fashion 4000
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
    ap.add_argument("--fashion", type=int, help="run the audit on this many Fashion-MNIST records instead")
    args = ap.parse_args()
    if args.fashion:
        fashion(args.fashion, args.models)
        return
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


def fashion(n: int, models: int) -> None:
    """The audit with σ² by calibrate on n Fashion-MNIST records: its rules' σ² and top-1% overlaps."""
    import time
    from dataclasses import replace

    from lood.empirical.step_size import lr_table
    from lood.settings import Arch, AuditSettings, NNGPSettings, Training
    from lood.studies import audit_memory
    from lood.studies.audit import audit

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_audit import FASHION_DEFAULT, fashion_subset

    X, y = fashion_subset(FASHION_DEFAULT, n)
    X = X.reshape(len(X), -1)
    arch = Arch(depth=2, width=128, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
    training = Training.from_schema(lr="auto", loss="mse", n_in=100, n_out=100, epochs=60, batch_size=64)  # config.yaml
    training = replace(training, lr=float(lr_table(X, y, arch, training, 2024)["lr"].iloc[0]))
    nngp = NNGPSettings.from_schema(sigma2="calibrate")
    settings = AuditSettings.from_schema(calibrate_models=models, sigma2_records=4000, device="cpu")
    t = time.perf_counter()
    res = audit(X, y, arch, nngp, settings, 2, audit_memory.available_bytes(), None, training, 2024)
    i = res.info
    print(
        f"Fashion-MNIST n={n:,}, d={X.shape[1]}, C={i['classes']}; depth 2 ReLU width 128, MSE, lr {training.lr:.4g} "
        f"(auto), {training.epochs} epochs; {models} in-models; sigma2 on {i['sigma2_records']:,} records; "
        f"{time.perf_counter() - t:.0f} s"
    )
    for r in i["sigma2_rules"]:
        print(
            f"  {r['rule']:20s} sigma2 = {r['sigma2']:.4g}{' (grid edge)' if r['at_edge'] else ''}; top-1% "
            f"({r['top1_records']} records) overlap with {i['sigma2_rule']}: {r['top1_overlap_with_chosen']:.2f}"
        )


if __name__ == "__main__":
    main()
