"""Progress lines with an ETA for long phases: counted work (`Progress`) and single LAPACK calls (`PhaseTimer`)."""

from __future__ import annotations

import logging
import threading
import time


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


class Progress:
    """Logs `label: p% (elapsed, ETA)` of a phase whose work is counted in units (tiles, flops)."""

    def __init__(self, log: logging.Logger | None, label: str, total: float, every: float) -> None:
        self.log, self.label, self.total, self.every = log, label, float(total), float(every)
        self.start = self.last = time.perf_counter()
        self.done = 0.0

    def __call__(self, done: float) -> None:
        """Record that `done` units of `total` are finished; log when `every` seconds have passed or at the end."""
        self.done = float(done)
        now = time.perf_counter()
        if self.log is None or (now - self.last < self.every and self.done < self.total):
            return
        self.last = now
        elapsed = now - self.start
        frac = self.done / self.total if self.total else 1.0
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        self.log.info(
            "%s: %5.1f%% after %s, ETA %s", self.label, 100 * frac, _clock(elapsed), _clock(eta) if frac > 0 else "?"
        )

    @property
    def seconds(self) -> float:
        """Wall seconds since the phase started."""
        return time.perf_counter() - self.start


def synchronize(device) -> None:
    """Wait for a GPU's queued work (its timings are otherwise launch times); nothing on the CPU."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(size: int, dtype=None, device="cpu") -> float:
    """GFLOP/s of a size x size matrix product with torch (float64 unless `dtype`) on `device`, best of 2.

    On the CPU, with torch's BLAS on its current threads.
    """
    import torch

    dtype = torch.float64 if dtype is None else dtype
    a, b = (torch.randn(size, size, dtype=dtype, device=device) for _ in range(2))
    best = float("inf")
    for _ in range(2):
        synchronize(device)
        t = time.perf_counter()
        torch.matmul(a, b)
        synchronize(device)
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


class PhaseTimer:
    """Logs `label: elapsed, ~p% by the estimate, ETA` every `every` seconds while one long LAPACK call runs.

    The estimate is `flops` at `gflops` GFLOP/s (a call gives no progress of its own); the line
    at the end gives the rate the call reached, which the next phase can use as its estimate.
    """

    def __init__(self, log: logging.Logger | None, label: str, flops: float, gflops: float, every: float) -> None:
        self.log, self.label, self.flops, self.gflops, self.every = log, label, flops, gflops, every
        self._stop = threading.Event()
        self.seconds = self.cpu = 0.0

    def _report(self) -> None:
        expected = self.flops / (self.gflops * 1e9)
        while not self._stop.wait(self.every):
            elapsed = time.perf_counter() - self.start
            frac = min(elapsed / expected, 0.99)
            eta = max(expected - elapsed, 0.0)
            self.log.info(
                "%s: %s elapsed, ~%.0f%% by the estimate, ETA ~%s", self.label, _clock(elapsed), 100 * frac, _clock(eta)
            )

    def __enter__(self) -> PhaseTimer:
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        if self.log is not None:
            self.log.info(
                "%s: %.3g TFLOP, expected ~%s at %.1f GFLOP/s",
                self.label,
                self.flops / 1e12,
                _clock(self.flops / (self.gflops * 1e9)),
                self.gflops,
            )
            self._thread = threading.Thread(target=self._report, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds, self.cpu = time.perf_counter() - self.start, time.process_time() - self.cpu_start
        self._stop.set()
        if self.log is not None:
            self._thread.join()
            self.log.info("%s: done in %s (%.1f GFLOP/s)", self.label, _clock(self.seconds), self.rate)

    @property
    def rate(self) -> float:
        """GFLOP/s the phase reached."""
        return self.flops / max(self.seconds, 1e-9) / 1e9
