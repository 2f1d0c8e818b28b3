"""Peak memory of a block of code: CUDA's allocator peak on a GPU, the resident set on the CPU."""

from __future__ import annotations

import resource
import sys
import threading
from collections.abc import Callable

import torch


def status_mb(field: str) -> float:
    """A memory field of Linux's ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 2**10  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_high_water_mark() -> bool:
    """Reset Linux's ``VmHWM`` to the current resident set; False where the kernel (or a
    sandbox's ``/proc``) does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _max_rss_mb() -> float:
    """The process's peak resident set in MB (``ru_maxrss``: bytes on macOS, else kB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


class _RssSampler(threading.Thread):
    """Reads ``VmRSS`` every ``interval`` seconds until stopped; ``peak`` is the largest read."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = status_mb("VmRSS")
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, status_mb("VmRSS"))

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return max(self.peak, status_mb("VmRSS"))


class PeakMemory:
    """Peak memory growth of a block in MB (``.mb`` after it): CUDA's allocator peak on a GPU;
    on the CPU the process's peak resident set during the block above its resident set at the
    start. An earlier, higher peak never hides the block's: Linux's high-water mark is reset on
    entry, or, where ``/proc`` does not allow that, a thread samples the resident set every
    ``interval`` seconds (a spike shorter than that may be missed). Without ``/proc`` (macOS)
    the block counts only above the process's earlier peak."""

    def __init__(self, device: torch.device, interval: float = 0.002) -> None:
        self.device = device
        self.interval = interval
        self.mb = 0.0

    def __enter__(self) -> PeakMemory:
        self._peak: Callable[[], float]
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device) / 2**20
            self._peak = lambda: torch.cuda.max_memory_allocated(self.device) / 2**20
        elif reset_high_water_mark():
            self._start = status_mb("VmRSS")
            self._peak = lambda: status_mb("VmHWM")
        else:
            try:
                sampler = _RssSampler(self.interval)
            except OSError:  # no /proc
                self._start = _max_rss_mb()
                self._peak = _max_rss_mb
            else:
                self._start = sampler.peak
                sampler.start()
                self._peak = sampler.stop
        return self

    def __exit__(self, *exc: object) -> None:
        self.mb = max(0.0, self._peak() - self._start)
