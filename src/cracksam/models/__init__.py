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
from cracksam.models.io import (
    apply_delta_checkpoint,
    export_full,
    load_model,
    parse_model_config,
    read_checkpoint_config,
    save_delta,
    save_trained,
)
from cracksam.models.registry import create, list_models, register_model
from cracksam.models.sam_checkpoint import LoadReport, download_official, load_sam_checkpoint
from cracksam.models.segmodels import SegModel, SegModelConfig, build_segmodel, list_architectures

__all__ = [
    "BACKBONES",
    "AdapterConfig",
    "BackboneSpec",
    "CrackSAM",
    "CrackSAMConfig",
    "DeltaConfig",
    "LoRAConfig",
    "LoadReport",
    "ParameterCount",
    "apply_delta",
    "apply_delta_checkpoint",
    "build_cracksam",
    "count_parameters",
    "create",
    "download_official",
    "export_full",
    "get_backbone",
    "list_models",
    "load_model",
    "load_sam_checkpoint",
    "merge_lora",
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
