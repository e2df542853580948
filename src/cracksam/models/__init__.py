"""Models: CrackSAM (SAM + delta), its builders, checkpoints and the model registry."""

from cracksam.models.backbones import BACKBONES, BackboneSpec, get_backbone
from cracksam.models.cracksam import (
    CrackSAM,
    CrackSAMConfig,
    ParameterCount,
    build_cracksam,
    count_parameters,
)
from cracksam.models.deltas import AdapterConfig, DeltaConfig, LoRAConfig, apply_delta, merge_lora
from cracksam.models.io import apply_delta_checkpoint, load_model, parse_model_config, read_checkpoint_config
from cracksam.models.registry import ModelEntry, create, create_model, list_models, model_entry, register_model
from cracksam.models.sam_checkpoint import LoadReport, download_official, load_sam_checkpoint
from cracksam.models.saving import export_full, save_delta, save_trained
from cracksam.models.segmodels import SegModel, SegModelConfig, build_segmodel, list_architectures

# The modules that register conventional networks; imported here (never by the registry) so that
# importing any part of cracksam.models sees every registered name.
from cracksam.models import zoo, zoo_lite, zoo_thin  # noqa: E402, F401  isort: skip

__all__ = [
    "BACKBONES",
    "AdapterConfig",
    "BackboneSpec",
    "CrackSAM",
    "CrackSAMConfig",
    "DeltaConfig",
    "LoRAConfig",
    "LoadReport",
    "ModelEntry",
    "ParameterCount",
    "apply_delta",
    "apply_delta_checkpoint",
    "build_cracksam",
    "count_parameters",
    "create",
    "create_model",
    "download_official",
    "export_full",
    "get_backbone",
    "list_models",
    "load_model",
    "load_sam_checkpoint",
    "merge_lora",
    "model_entry",
    "read_checkpoint_config",
    "register_model",
    "save_delta",
    "save_trained",
    "parse_model_config",
    "SegModel",
    "SegModelConfig",
    "build_segmodel",
    "list_architectures",
]
