"""The audit on a torch device (a CUDA GPU when the job has one): kernel and algebra in float64 in its memory.

The kernel matrix is built on the device in row blocks (lood.analytic.kernel_relu.relu_nngp, the
ReLU network's closed form; GELU and erf kernels come from the CPU tiles of
lood.analytic.kernel, since neural-tangents does not run on this machine's CUDA, and are copied
over). Then the Cholesky factor overwrites it in place (torch's cuSOLVER), α comes from two
triangular solves, and diag P from row blocks of L⁻¹ (lood.analytic.gp_inplace.inverse_column_norms,
the CPU route's code). So the device holds 8 n² bytes plus row blocks (`device_bytes`); where
that does not fit its free memory the audit keeps to the CPU routes and says so. All of it is
plain torch, so the tests run it on the CPU device against the CPU route.
"""

from __future__ import annotations

import logging

import numpy as np

from lood.analytic.gp import JITTER_STEPS, not_positive_definite
from lood.analytic.gp_inplace import ALGEBRA_BLOCK, InplaceFit, cholesky_flops
from lood.errors import LoodInputError
from lood.runtime.progress import PhaseTimer, Progress, matmul_rate, synchronize
from lood.settings import Arch


def device_choice(setting: str):
    """The torch device the audit runs on, or None for the CPU routes.

    auto: the first CUDA device when torch sees one; cpu: the CPU routes; else a torch device
    name (cuda, cuda:1), which must exist.
    """
    import torch

    if setting == "cpu":
        return None
    if setting == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else None
    try:
        device = torch.device(setting)
    except RuntimeError as err:
        raise LoodInputError(f"audit.device {setting!r} is not a torch device: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LoodInputError(f"audit.device is {setting!r} but torch sees no CUDA device: use auto or cpu")
    return device


def device_free_bytes(device) -> int:
    """Free memory of a CUDA device (torch.cuda.mem_get_info); for the CPU device, what the process may take."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    from lood.runtime.memory import available_bytes

    return available_bytes()


def device_bytes(n: int, block: int) -> int:
    """Device memory of the audit: 8 n² for K then L, the kernel's row block and its recursion's two
    temporaries (3 x 8 b n), L⁻¹'s row block and its solve's copy (2 x 8 n 1,024), and small blocks."""
    b, a = min(int(block), int(n)), min(ALGEBRA_BLOCK, int(n))
    return 8 * n * n + max(3 * 8 * b * n, 2 * 8 * n * a + 4 * 8 * a * a) + 16 * 8 * n + 8 * 2000**2 * 3


def kernel_on_device(X: np.ndarray, arch: Arch, block: int, device):
    """(K as an n x n float64 tensor on `device`, diag K as a host array)."""
    import torch

    from lood.analytic.kernel import kernel_and_diag
    from lood.analytic.kernel_relu import relu_diag, relu_nngp

    if arch.activation == "relu":
        Xt = torch.as_tensor(X, dtype=torch.float64, device=device)
        K = relu_nngp(Xt, None, arch, int(block))
        return K, relu_diag(np.einsum("ij,ij->i", X, X), arch, X.shape[1])
    K, diag = kernel_and_diag(X, None, arch, int(block))  # stax on the CPU, then copied over
    return torch.as_tensor(K, device=device), diag


def fit_on_device(
    X: np.ndarray,
    Y: np.ndarray,
    arch: Arch,
    sigma2: float,
    block: int,
    device,
    log: logging.Logger | None,
    every: float,
) -> tuple[InplaceFit, np.ndarray, float]:
    """(α and diag P as lood.analytic.gp_inplace.fit_inplace gives them, diag K, kernel seconds), all on `device`.

    The jitter policy is lood.analytic.gp.fit_gp's: a failed Cholesky rebuilds the kernel and retries.
    """
    import time

    import torch

    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    n = len(X)
    t = time.perf_counter()
    K, K_diag = kernel_on_device(X, arch, block, device)
    synchronize(device)
    seconds_kernel = time.perf_counter() - t
    scale = float(np.mean(K_diag)) or 1.0
    rate = matmul_rate(min(n, 2000), device=device) if log is not None else 1.0
    seconds = {"cholesky": 0.0}
    info = torch.zeros((), dtype=torch.int32, device=device)
    tries = ((0.0,) if sigma2 > 0 else ()) + tuple(e * scale for e in JITTER_STEPS)
    diag_t = torch.as_tensor(K_diag, device=device)
    for k, jitter in enumerate(tries):
        if k:
            K = kernel_on_device(X, arch, block, device)[0]
        K = K.mT  # K is symmetric: its transpose is the same matrix in LAPACK's column-major layout, no copy
        K.diagonal().copy_(diag_t + (sigma2 + jitter))
        with PhaseTimer(log, f"Cholesky (on {device})", cholesky_flops(n), rate, every) as chol:
            torch.linalg.cholesky_ex(K, out=(K, info))
            synchronize(device)
        seconds["cholesky"] += chol.seconds
        if int(info) == 0:
            break
    else:
        raise not_positive_definite(sigma2)
    Z = torch.linalg.solve_triangular(K, torch.as_tensor(Y, device=device), upper=False)
    alpha = torch.linalg.solve_triangular(K.mT, Z, upper=True).cpu().numpy()
    t = time.perf_counter()
    from lood.analytic.gp_inplace import inverse_column_norms, inverse_work

    progress = Progress(log, f"diag P (rows of L^-1 on {device})", inverse_work(n, ALGEBRA_BLOCK), every)
    p_diag = inverse_column_norms(K, ALGEBRA_BLOCK, progress)
    synchronize(device)
    seconds["inverse"] = time.perf_counter() - t
    del K
    fit = InplaceFit(Y=Y, alpha=alpha, p_diag=p_diag, sigma2=float(sigma2), jitter=jitter, seconds=seconds)
    return fit, K_diag, seconds_kernel
