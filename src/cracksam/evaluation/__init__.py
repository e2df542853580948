"""Evaluation: segmentation metrics of the crack class."""

from cracksam.evaluation.metrics import BinaryMetrics, binary_counts, metrics_from_counts

__all__ = ["BinaryMetrics", "binary_counts", "metrics_from_counts"]
