"""Benchmarks of the training-free audit (docs/audit.md), printed as plain lines, side by side in one run.

(a) Agreement: the in-place audit (lood.studies.audit) against today's implementation (lood.analytic.tables.prepare
    + lood_all_table) at n = 2,000, d = 64, C = 10: largest relative difference of KL and mean distance.
(b) Crash regression at n = 16,000 (8 n² = 2 GB): one Cholesky with each BLAS choice, each in its
    own process: SciPy's dpotrf with OpenBLAS as the wheels pick it (SkylakeX kernels on AVX-512),
    with OPENBLAS_CORETYPE=Haswell, and on one thread; torch's LAPACK (MKL) in place; and the
    audit's own algebra (lood.analytic.gp_inplace.fit_inplace: torch's Cholesky in place, then diag P) as
    `snakemake audit` runs it. Exit status, seconds and GFLOP/s of each; the audit's row must say
    ok, or the line says REGRESSION. (--crash-n sets n; at 40,000, SciPy's dpotrf crashed with the
    Haswell kernels too, docs/audit.md.)
(c) n = 10,000 x 3,072, 9 hidden ReLU layers (CIFAR-10 shape), σ² = 0.2: the audit's phases, peak
    RSS, and the floor n³/3 flops at the matmul rate measured in the same process; beside it
    today's path (lood.analytic.tables.prepare + lood_all_table) on the same data, in its own process.
(d) n = 40,000 x 784, C = 10: Fashion-MNIST (a seeded subset of the training set, as
    config/fashion_audit.yaml) when its idx files are found, else synthetic data of that shape;
    σ² by the marginal likelihood on 4,000 records, as the config. Same printout as (c).

(e) n = 20,000 x 784, C = 10 (Fashion-MNIST): the out-of-core route (panels of 4,096) against the
    in-memory one on the same data and σ²: largest relative difference of KL, mean distance and
    AUC, and whether the top 1% by KL is in the same order (else the records that moved).
(f) all n = 60,000 Fashion-MNIST training records with audit.memory_gb = 18, as
    config/fashion_audit_full.yaml: the route, phases, wall time and peak RSS (run it alone:
    it needs >= 21 GB available and both cores for about half an hour).
Floors are measured with the library doing the work: torch's matmul for the audit's algebra,
NumPy's for SciPy's dpotrf in (b).

Each heavy case runs in a child process (its own peak RSS, and the BLAS setting chosen before
NumPy loads). Run (d) alone on an otherwise idle machine: it takes 15 GB and all cores for minutes.

Usage: .venv/bin/python bench/bench_audit.py [--only a|b|c|d|e|f] [--quick] [--fashion DIR]
       .venv/bin/python bench/bench_audit.py --write-synthetic resources/synthetic_audit.npz
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FASHION_DEFAULT = Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------- child processes


def child_env(blas: str, threads: int) -> dict[str, str]:
    """The environment of a child: OpenBLAS core and thread count as named (NumPy reads them at import)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    }
    if blas == "haswell":
        env["OPENBLAS_CORETYPE"] = "Haswell"
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_child(args: list[str], env: dict[str, str], timeout: int) -> tuple[int, str]:
    """Run this script as a child; its stdout lines come back, stderr (progress) is passed through."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], env=env, stdout=subprocess.PIPE, text=True, timeout=timeout
    )
    return proc.returncode, proc.stdout


def matmul_rate(library: str = "torch") -> float:
    """GFLOP/s of a 4,000 x 4,000 float64 matrix product (best of 3) in this process, by the library doing the work.

    "torch": torch's BLAS (MKL here) on all cores, which runs the audit's Cholesky and diag P;
    "numpy": NumPy's OpenBLAS, which runs SciPy's dpotrf in (b). A floor measured with the other
    library misstates the ratio (an Intel Xeon printed 0.57x the floor with NumPy's rate).
    """
    if library == "numpy":
        import numpy as np

        rng = np.random.default_rng(0)
        A, B, C = rng.standard_normal((4000, 4000)), rng.standard_normal((4000, 4000)), np.empty((4000, 4000))
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            np.matmul(A, B, out=C)
            best = min(best, time.perf_counter() - t)
        return 2 * 4000**3 / best / 1e9
    import torch

    from lood.runtime.progress import matmul_rate as torch_rate

    previous = torch.get_num_threads()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    try:
        return max(torch_rate(4000) for _ in range(2))
    finally:
        torch.set_num_threads(previous)


def child_cholesky(method: str, n: int) -> None:
    """(b) in a child: build an SPD n x n matrix in place, factorise it by `method`, print one line."""
    if method == "audit":
        from lood.runtime.openblas import use_safe_core

        use_safe_core()
    import resource

    import numpy as np

    from lood.analytic import gp_inplace

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 256))
    A = np.empty((n, n), order="F")
    for i in range(0, n, 1000):  # block products: no n x n temporary
        A[:, i : i + 1000] = X @ X[i : i + 1000].T / 256
    A[np.diag_indices(n)] += 1.0
    rate = matmul_rate("numpy" if method == "native" else "torch")
    threads = len(os.sched_getaffinity(0))
    t = time.perf_counter()
    extra = ""
    if method == "native":
        from scipy.linalg import lapack

        _, info = lapack.dpotrf(A, lower=1, clean=0, overwrite_a=1)
        seconds = time.perf_counter() - t
    elif method == "torch":
        import torch

        T = torch.from_numpy(A)  # Fortran order: strides (1, n), LAPACK's layout, shared memory
        _, info_t = torch.linalg.cholesky_ex(T, out=(T, torch.empty((), dtype=torch.int32)))
        info, seconds = int(info_t), time.perf_counter() - t
    else:  # the audit's own algebra: torch's Cholesky in place, α, diag P from row blocks of L⁻¹
        fit = gp_inplace.fit_inplace(A, rng.standard_normal((n, 10)), 0.1, threads, lambda out: None, None, 60.0)
        info, seconds = 0, fit.seconds["cholesky"]
        extra = f"; diag P {fit.seconds['inverse']:.1f} s"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(
        f"info {info}; Cholesky {seconds:.1f} s = {n**3 / 3 / seconds / 1e9:.1f} GFLOP/s "
        f"({'numpy' if method == 'native' else 'torch'} matmul {rate:.1f}){extra}; "
        f"peak RSS {rss:.2f} GB"
    )


def child_audit(data: str, depth: int, sigma2: str, block: int, memory_gb: float | None = None) -> None:
    """(c), (d) in a child: the audit of the .npz `data` exactly as the workflow's audit_lood runs it."""
    from lood.runtime.openblas import use_safe_core

    core = use_safe_core()
    import logging

    import numpy as np

    from lood.settings import Arch, AuditSettings, NNGPSettings
    from lood.studies import audit_memory
    from lood.studies.audit import audit

    logging.basicConfig(level=logging.INFO, format="    %(asctime)s %(message)s", stream=sys.stderr)
    f = np.load(data)
    X, y = f["X"], f["y"]
    n, d = X.shape
    rate = matmul_rate()
    threads = len(os.sched_getaffinity(0))
    arch = Arch(depth=depth, width=1024, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
    value = sigma2 if sigma2 == "marginal_likelihood" else float(sigma2)
    nngp = NNGPSettings(
        sigma2=value,
        all_records=True,
        auc_samples=20000,
        block_size=block,
        grid_min=1e-4,
        grid_max=10.0,
        grid_points=41,
    )
    settings = AuditSettings.from_schema(
        sigma2_records=4000, top=20, progress_seconds=60.0, memory_gb=memory_gb, device="cpu"
    )
    res = audit(X, y, arch, nngp, settings, threads, audit_memory.available_bytes(), logging.getLogger("audit"))
    i = res.info
    floor = n**3 / 3 / (rate * 1e9)
    print(
        f"n={n:,} d={d:,} C={i['classes']} depth {depth} ReLU, block {block}, {threads} threads, "
        f"OPENBLAS_CORETYPE={core}, BLAS threads {i['blas_threads']}"
    )
    print(f"sigma2 = {i['sigma2']:.4g} ({i['sigma2_rule']}): {i['seconds_sigma2']:.1f} s")
    print(
        f"route: {i['route']}"
        + (
            f", panels of {i['panel_width']:,} columns, {i['disk_gb']:.1f} GB on disk"
            if i["route"] != "in_memory"
            else ""
        )
        + f"; ReLU kernel by {i.get('relu_kernel', '-')}"
    )
    cores = len(os.sched_getaffinity(0))

    def row(name: str, key: str, ratio: bool = False) -> None:
        wall, cpu = i[f"seconds_{key}"], i.get(f"seconds_{key}_cpu")
        extra = f" = {wall / floor:.2f} x the floor" if ratio else ""
        cpu_text = f"; {cpu:7.1f} s CPU (/ {cores} = {cpu / cores:.1f} s)" if cpu is not None else ""
        print(f"{name:26s}{wall:7.1f} s wall{extra}{cpu_text}")

    row("kernel tiles:", "kernel")
    in_memory = i["route"] == "in_memory"
    row("Cholesky (in place):" if in_memory else "Cholesky (panels, file):", "cholesky", ratio=True)
    row("diag P (rows of L^-1):" if in_memory else "diag P (blocks of L^-1):", "inverse", ratio=True)
    row("LOOD of all records:", "lood")
    row("NNGP AUC (quadrature):", "auc")
    row("whole audit:", "total")
    print(
        f"whole audit: {i['seconds_total'] / 60:.1f} min wall; "
        f"peak RSS {i['peak_rss_gb']:.2f} GB (planned {i['memory_needed_gb']:.2f} GB beside the data)"
    )
    print(
        f"floor: n^3/3 = {n**3 / 3 / 1e12:.2f} TFLOP at torch's measured matmul rate {rate:.1f} GFLOP/s "
        f"= {floor:.1f} s "
        f"(Cholesky + diag P: 2 x = {2 * floor:.1f} s); load average now {os.getloadavg()[0]:.1f}"
    )
    print(
        f"KL-LOOD median {np.median(res.table['kl']):.4g}, max {res.table['kl'].max():.4g}; "
        f"NNGP AUC median {np.median(res.table['auc_nngp']):.4f}, max {res.table['auc_nngp'].max():.4f}"
    )


def child_agree(data: str, width: int) -> None:
    """(e) in a child: the out-of-core audit (panels of `width`) against the in-memory one on the same data and σ²."""
    from lood.runtime.openblas import use_safe_core

    use_safe_core()
    import logging

    import numpy as np

    from lood.settings import Arch, AuditSettings, NNGPSettings
    from lood.studies import audit_memory
    from lood.studies.audit import audit, marginal_likelihood_sigma2

    logging.basicConfig(level=logging.INFO, format="    %(asctime)s %(message)s", stream=sys.stderr)
    f = np.load(data)
    X, y = f["X"].astype(np.float64), f["y"]
    n, d = X.shape
    threads = len(os.sched_getaffinity(0))
    arch = Arch(depth=2, width=1024, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
    nngp = NNGPSettings.from_schema(sigma2="marginal_likelihood", block_size=2048)
    sigma2 = marginal_likelihood_sigma2(X, y, arch, nngp, 4000)["sigma2"]
    nngp = NNGPSettings.from_schema(sigma2=float(sigma2), block_size=2048)
    budget = audit_memory.outofcore_bytes(n, d, 2048, 2, width) / 1e9
    runs = {}
    for name, memory_gb in (("in memory", None), ("out of core", budget)):
        settings = AuditSettings.from_schema(progress_seconds=60.0, memory_gb=memory_gb, device="cpu")
        res = audit(X, y, arch, nngp, settings, threads, audit_memory.available_bytes(), logging.getLogger("audit"))
        runs[name] = res
        i = res.info
        print(
            f"{name:12s} route {i['route']}, panels {i['panel_width']:,}: kernel {i['seconds_kernel']:.1f} s, "
            f"Cholesky {i['seconds_cholesky']:.1f} s, diag P {i['seconds_inverse']:.1f} s, "
            f"total {i['seconds_total']:.1f} s"
        )
    a, b = runs["in memory"].table, runs["out of core"].table
    print(
        f"n={n:,}, d={d}, C={runs['in memory'].info['classes']}, sigma2 = {sigma2:.4g} (marginal likelihood on 4,000)"
    )
    for col in ("kl", "mse", "auc_nngp"):
        rel = np.abs(a[col].to_numpy() - b[col].to_numpy()) / np.abs(a[col].to_numpy())
        print(f"max relative difference of {col}: {rel.max():.1e}")
    k = max(1, int(np.ceil(0.01 * n)))
    top_a, top_b = a.nsmallest(k, "rank")["record"].to_numpy(), b.nsmallest(k, "rank")["record"].to_numpy()
    same = np.array_equal(top_a, top_b)
    print(f"top 1% ({k} records) by KL: ranks identical: {same}")
    if not same:
        moved = [
            (int(r), int(a.loc[r, "rank"]), int(b.loc[r, "rank"]))
            for r in sorted(set(top_a) | set(top_b))
            if a.loc[r, "rank"] != b.loc[r, "rank"]
        ]
        print(f"  records whose rank differs (record, rank in memory, rank out of core): {moved}")


def child_current(data: str, depth: int, sigma2: float, block: int) -> None:
    """(c) in a child: today's path (lood.analytic.tables.prepare + lood_all_table), phase by phase."""
    import resource

    import numpy as np

    from lood.analytic.gp import fit_gp, targets
    from lood.analytic.kernel import kernel_and_diag
    from lood.analytic.tables import NNGP, lood_all_table
    from lood.settings import Arch

    f = np.load(data)
    X, y = f["X"], f["y"]
    arch = Arch(depth=depth, width=1024, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
    t0 = t = time.perf_counter()
    K, K_diag = kernel_and_diag(X, None, arch, block)
    t_kernel, t = time.perf_counter() - t, time.perf_counter()
    fit = fit_gp(K, targets(y, None), sigma2)
    del K
    t_chol, t = time.perf_counter() - t, time.perf_counter()
    table = lood_all_table(NNGP(X=X, y=y, arch=arch, fit=fit, K_diag=K_diag, block_size=block))
    t_lood = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(
        f"kernel {t_kernel:.1f} s, Cholesky (copy + LAPACK) {t_chol:.1f} s, LOOD with P_ii by triangular inverse "
        f"{t_lood:.1f} s; total {time.perf_counter() - t0:.1f} s wall, peak RSS {rss:.2f} GB, "
        f"KL median {np.median(table['kl']):.4g}"
    )


# ----------------------------------------------------------------------------- parent


def synthetic(n: int, d: int, classes: int, seed: int):
    """Records in [0, 1] drawn around 10 smooth class prototypes (28 x 28 images when d = 784), seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    side = int(round(d**0.5))
    grid = np.linspace(-1, 1, side) if side * side == d else None
    protos = []
    for _ in range(classes):
        if grid is not None:
            cx, cy, w = rng.uniform(-0.5, 0.5, 3)
            img = np.exp(-((grid[None, :] - cx) ** 2 + (grid[:, None] - cy) ** 2) / (0.2 + 0.3 * abs(w)))
            protos.append(img.ravel())
        else:
            protos.append(rng.random(d))
    protos = np.array(protos)
    y = rng.integers(0, classes, n)
    X = np.clip(protos[y] * rng.uniform(0.6, 1.2, (n, 1)) + 0.15 * rng.standard_normal((n, d)), 0.0, 1.0)
    return X, y.astype(np.int64)


def write_synthetic(path: Path, n: int = 40_000, d: int = 784) -> Path:
    """The synthetic stand-in of config/synthetic_audit.yaml (X, y, image_shape)."""
    import numpy as np

    X, y = synthetic(n, d, 10, 2024)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, X=X, y=y, image_shape=np.array([28, 28]))
    return path


def fashion_subset(folder: Path, n: int):
    """The audit's Fashion-MNIST data, as prepare_data builds it for config/fashion_audit.yaml."""
    from lood.data.prepare import prepare_dataset

    ds = prepare_dataset(
        {"source": "fashion_mnist", "classes": None, "n_records": n, "normalise": "none"}, 2024, folder
    )
    return ds["X"], ds["y"]


def bench_agreement(n: int) -> None:
    """(a) the lean audit against lood.analytic.tables.prepare + lood_all_table, same data."""
    import numpy as np

    from lood.analytic.tables import lood_all_table, prepare
    from lood.settings import Arch, AuditSettings, NNGPSettings
    from lood.studies import audit_memory
    from lood.studies.audit import audit

    X, y = synthetic(n, 64, 10, 1)
    arch = Arch(depth=2, width=1024, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
    nngp = NNGPSettings(
        sigma2=0.2, all_records=True, auc_samples=20000, block_size=512, grid_min=1e-4, grid_max=10.0, grid_points=41
    )
    settings = AuditSettings.from_schema(sigma2_records=4000, top=20, progress_seconds=60.0)
    print(f"(a) agreement with today's implementation: n={n:,}, d=64, C=10, depth 2 ReLU, sigma2 0.2, block 512")
    t = time.perf_counter()
    res = audit(X, y, arch, nngp, settings, len(os.sched_getaffinity(0)), audit_memory.available_bytes(), None)
    t_lean = time.perf_counter() - t
    t = time.perf_counter()
    ref = lood_all_table(prepare(X, y, arch, 0.2, 512))
    t_ref = time.perf_counter() - t
    for col in ("kl", "mse"):
        a, b = res.table[col].to_numpy(), ref[col].to_numpy()
        print(f"max relative difference of {col}: {np.max(np.abs(a - b) / np.abs(b)):.1e}")
    print(f"in-place audit {t_lean:.2f} s (with the NNGP AUC of every record); prepare + lood_all_table {t_ref:.2f} s")


def bench_crash(n: int) -> None:
    """(b) one Cholesky per BLAS choice, each in its own process."""
    print(f"(b) Cholesky at n={n:,} (8 n^2 = {8 * n * n / 1e9:.1f} GB), each in its own process, 2 threads unless said")
    cases = [
        ("scipy dpotrf, OpenBLAS as picked (SkylakeX on AVX-512)", "native", "default", 2),
        ("scipy dpotrf, OPENBLAS_CORETYPE=Haswell", "native", "haswell", 2),
        ("scipy dpotrf, 1 thread", "native", "default", 1),
        ("torch.linalg.cholesky_ex(A, out=A), MKL", "torch", "default", 2),
        ("lood.analytic.gp_inplace.fit_inplace as `snakemake audit` runs it", "audit", "default", 2),
    ]
    for label, method, blas, threads in cases:
        t = time.perf_counter()
        rc, out = run_child(["cholesky", method, str(n)], child_env(blas, threads), 3600)
        wall = time.perf_counter() - t
        status = "ok" if rc == 0 else (f"killed by signal {-rc}" if rc < 0 else f"exit {rc}")
        if method.startswith("audit") and rc != 0:
            status += "  <-- REGRESSION: the audit's own algebra crashed"
        print(f"  {label:66s} {status:18s} {out.strip() if rc == 0 else ''} [{wall:.0f} s with setup]")


def fashion_found(folder: Path) -> bool:
    """Whether Fashion-MNIST's training idx files are in `folder`."""
    return (folder / "train-images-idx3-ubyte.gz").exists() or (folder / "train-images-idx3-ubyte").exists()


def bench_case(
    tag: str, X, y, depth: int, sigma2: str, block: int, current: bool, memory_gb: float | None = None
) -> None:
    """(c)/(d): write the data, run the audit in a child (and today's path in another), print their lines."""
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        np.savez(path, X=X, y=y)
        del X
        runs = [("in-place audit (lood.studies.audit)", "audit")] + (
            [("today (lood.analytic.tables)", "current")] if current else []
        )
        for label, kind in runs:
            env = dict(os.environ)
            if kind == "current":  # as the workflow's nngp_lood_all runs it: OpenBLAS as the wheels pick it
                env = child_env("default", len(os.sched_getaffinity(0)))
            extra = [str(memory_gb)] if memory_gb is not None and kind == "audit" else []
            rc, out = run_child([kind, str(path), str(depth), sigma2, str(block), *extra], env, 7200)
            print(f"  {label}:" if kind == "current" or memory_gb is None else "  the audit (lood.studies.audit):")
            for line in out.strip().splitlines():
                print(f"    {line}")
            if rc != 0:
                print(f"    {tag}: the child failed ({'signal ' + str(-rc) if rc < 0 else 'exit ' + str(rc)})")


def main() -> None:
    """Run the benchmarks."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a minute), to check the script runs")
    ap.add_argument("--only", choices=["a", "b", "c", "d", "e", "f"], help="run one benchmark")
    ap.add_argument("--fashion", type=Path, default=FASHION_DEFAULT, help="directory of the Fashion-MNIST idx files")
    ap.add_argument("--write-synthetic", type=Path, help="write the synthetic 40,000 x 784 .npz there and stop")
    ap.add_argument("--crash-n", type=int, default=16_000, help="n of the Cholesky comparison (b)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "agree":
            child_agree(rest[0], int(rest[1]))
        elif kind == "cholesky":
            child_cholesky(rest[0], int(rest[1]))
        elif kind == "current":
            child_current(rest[0], int(rest[1]), float(rest[2]), int(rest[3]))
        else:
            child_audit(rest[0], int(rest[1]), rest[2], int(rest[3]), float(rest[4]) if len(rest) > 4 else None)
        return
    if args.write_synthetic:
        print(f"wrote {write_synthetic(args.write_synthetic)}")
        return
    import numpy as np

    cores = len(os.sched_getaffinity(0))
    print(f"cores: {cores}; load average: {os.getloadavg()[0]:.1f}")
    if args.only in (None, "a"):
        bench_agreement(500 if args.quick else 2000)
    if args.only in (None, "b"):
        bench_crash(3000 if args.quick else args.crash_n)
    if args.only in (None, "c"):
        n = 1000 if args.quick else 10_000
        print(f"(c) every record at CIFAR-10 shape: n={n:,}, d=3,072, depth 9 ReLU, sigma2 0.2")
        X, y = synthetic(n, 3072, 2, 3)
        bench_case("(c)", X, y, 9, "0.2", 2048, current=True)
    if args.only in (None, "d"):
        n = 2000 if args.quick else 40_000
        found = (args.fashion / "train-images-idx3-ubyte.gz").exists() or (
            args.fashion / "train-images-idx3-ubyte"
        ).exists()
        source = f"Fashion-MNIST ({args.fashion})" if found else "synthetic (no Fashion-MNIST found)"
        print(f"(d) the audit of n={n:,} x 784, C=10: {source}, sigma2 by marginal likelihood on 4,000 records")
        X, y = fashion_subset(args.fashion, n) if found else synthetic(n, 784, 10, 2024)
        bench_case("(d)", X, y, 2, "marginal_likelihood", 2048, current=False)
    if args.only in (None, "e"):
        n = 3000 if args.quick else 20_000
        width = 512 if args.quick else 4096
        found = fashion_found(args.fashion)
        print(
            f"(e) out of core (panels of {width:,}) against in memory, n={n:,} x 784, C=10: "
            f"{'Fashion-MNIST' if found else 'synthetic'}, one sigma2 for both"
        )
        X, y = fashion_subset(args.fashion, n) if found else synthetic(n, 784, 10, 2024)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "data.npz"
            np.savez(path, X=X, y=y)
            rc, out = run_child(["agree", str(path), str(width)], dict(os.environ), 7200)
            print("\n".join("  " + line for line in out.strip().splitlines()))
            if rc != 0:
                print(f"  (e): the child failed (rc {rc})")
    if args.only in (None, "f"):
        n = 3000 if args.quick else 60_000
        found = fashion_found(args.fashion)
        memory_gb = 0.48 if args.quick else 18.0
        print(
            f"(f) the audit of all n={n:,} x 784, C=10: {'Fashion-MNIST' if found else 'synthetic'}, "
            f"audit.memory_gb = {memory_gb:g} (config/fashion_audit_full.yaml), sigma2 by marginal likelihood on 4,000"
        )
        X, y = fashion_subset(args.fashion, n) if found else synthetic(n, 784, 10, 2024)
        bench_case("(f)", X, y, 2, "marginal_likelihood", 2048, current=False, memory_gb=memory_gb)


if __name__ == "__main__":
    main()
