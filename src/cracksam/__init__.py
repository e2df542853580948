"""cracksam: crack segmentation with the Segment Anything Model and parameter-efficient deltas."""

from cracksam.errors import CheckpointError, ConfigError, CrackSAMError, DatasetError

__version__ = "0.1.0"

__all__ = ["CheckpointError", "ConfigError", "CrackSAMError", "DatasetError", "__version__"]
