"""Peak memory of a block of code: CUDA's allocator peak on a GPU, the resident set on the CPU."""

from __future__ import annotations

import resource
import sys

import torch


def status_mb(field: str) -> float:
    """A memory field of Linux's ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 2**10  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


class PeakMemory:
    """Peak memory growth of a block in MB (``.mb`` after it): CUDA's allocator peak on a GPU;
    on the CPU the process's peak resident set during the block above its resident set at the
    start. Linux's high-water mark is reset on entry, so an earlier, higher peak does not hide
    the block's; elsewhere the block counts only above the process's earlier peak."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mb = 0.0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device) / 2**20
            return self
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current resident set
            self._start, self._field = status_mb("VmRSS"), "VmHWM"
        except OSError:
            self._start, self._field = self._max_rss(), None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            peak = status_mb(self._field) if self._field else self._max_rss()
        self.mb = max(0.0, peak - self._start)

    @staticmethod
    def _max_rss() -> float:
        """The process's peak resident set in MB (``ru_maxrss``: bytes on macOS, else kB)."""
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2**20 if sys.platform == "darwin" else rss / 2**10
