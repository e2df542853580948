"""cracksam: crack segmentation with the Segment Anything Model and parameter-efficient deltas."""

from cracksam._telemetry import switch_off_runtime_telemetry
from cracksam.errors import CheckpointError, ConfigError, CrackSAMError, DatasetError

switch_off_runtime_telemetry()  # before onnxruntime or openvino is imported (see cracksam._telemetry)

__version__ = "0.1.0"

__all__ = ["CheckpointError", "ConfigError", "CrackSAMError", "DatasetError", "__version__"]
