"""What an arch costs, from per-op tables: parameters and FLOPs (``sizes``) and latency on the
run's device (``latency``, measured and cached); the constraints and cost objectives read them."""

from nas.cost.latency import LatencyModel
from nas.cost.sizes import CostModel, count_flops, count_params

__all__ = ["CostModel", "LatencyModel", "count_flops", "count_params"]
