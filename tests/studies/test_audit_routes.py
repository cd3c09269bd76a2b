"""The audit's routes beyond the in-place one: out of core (forced by a small memory budget) and on a torch
device (run on the CPU device), each against the in-memory CPU route; the memory plan that picks them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lood.analytic import gp_device, gp_outofcore
from lood.errors import LoodInputError
from lood.settings import Arch, AuditSettings, NNGPSettings
from lood.studies import audit, audit_memory

ARCH = Arch(depth=2, width=1, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
NNGP = NNGPSettings.from_schema(sigma2=0.05, block_size=96)


def data(n: int, d: int, C: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    return np.clip(rng.random((C, d))[y] + 0.3 * rng.standard_normal((n, d)), 0, None), y


def settings(**kw) -> AuditSettings:
    return AuditSettings.from_schema(top=5, progress_seconds=1.0, device="cpu", **kw)


def assert_same_audit(a, b, tol: float) -> None:
    for col in ("kl", "mse", "auc_nngp"):
        x, y = a.table[col].to_numpy(), b.table[col].to_numpy()
        assert np.max(np.abs(x - y) / np.abs(x)) <= tol, col
    np.testing.assert_array_equal(a.table["rank"], b.table["rank"])


def test_out_of_core_audit_matches_the_in_memory_audit(tmp_path):
    n, d = 1400, 10
    X, y = data(n, d, 4, 0)
    ref = audit.audit(X, y, ARCH, NNGP, settings(), 2, audit_memory.available_bytes(), None)
    assert ref.info["route"] == "in_memory"
    # a budget below 8 n² plus blocks but above three panels of 600 columns forces the file route
    budget = audit_memory.outofcore_bytes(n, d, 96, 2, 600)
    assert budget < audit_memory.bytes_needed(n, d, 96, 2)
    res = audit.audit(X, y, ARCH, NNGP, settings(memory_gb=budget / 1e9, scratch=str(tmp_path)), 2, 10**12, None)
    assert (
        res.info["route"] == "out_of_core" and res.info["panel_width"] == 576
    )  # 600 rounded down to 6 blocks: 3 panels
    assert_same_audit(ref, res, 1e-9)
    assert list(tmp_path.iterdir()) == []  # the scratch file is gone


def test_plan_picks_the_route_and_refuses_with_the_bytes_it_needs():
    n, d, b, w = 60_000, 784, 2048, 2
    big = audit_memory.plan(n, d, b, w, 10**12, 10**12)
    assert big["route"] == "in_memory" and big["bytes"] == audit_memory.bytes_needed(n, d, b, w)
    p = audit_memory.plan(n, d, b, w, 18 * 10**9, 10**12)
    assert p["route"] == "out_of_core" and p["width"] % b == 0
    # the widest multiple of the block that fits
    assert audit_memory.outofcore_bytes(n, d, b, w, p["width"]) <= 18 * 10**9
    assert audit_memory.outofcore_bytes(n, d, b, w, p["width"] + b) > 18 * 10**9
    assert p["disk_bytes"] == gp_outofcore.disk_bytes(n, p["width"])
    least = audit_memory.outofcore_bytes(n, d, b, w, audit_memory.MIN_WIDTH)
    with pytest.raises(LoodInputError, match=f"{least / 1e9:.2f} GB for the out-of-core route"):
        audit_memory.plan(n, d, b, w, least - 1, 10**12)
    with pytest.raises(LoodInputError, match="GB of panels but the scratch folder has"):
        audit_memory.plan(n, d, b, w, 18 * 10**9, 10**9)


def test_device_route_on_the_cpu_device_matches_the_cpu_route(monkeypatch):
    import torch

    X, y = data(500, 12, 3, 1)
    gelu = replace(ARCH, activation="gelu")  # its kernel comes from the CPU tiles, copied to the device
    refs = {a: audit.audit(X, y, a, NNGP, settings(), 2, audit_memory.available_bytes(), None) for a in (ARCH, gelu)}
    monkeypatch.setattr(gp_device, "device_choice", lambda setting: torch.device("cpu"))
    for arch, ref in refs.items():
        res = audit.audit(X, y, arch, NNGP, settings(), 2, audit_memory.available_bytes(), None)
        assert ref.info["route"] == "in_memory" and res.info["route"] == "device (cpu)"
        assert_same_audit(ref, res, 1e-9)


def test_device_choice():
    assert gp_device.device_choice("cpu") is None
    with pytest.raises(LoodInputError, match="not a torch device"):
        gp_device.device_choice("tpu7")
