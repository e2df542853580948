"""Writing an OpenVINO IR, shared by every exporter that makes one: the FP32/FP16 conversion of an
ONNX export (:mod:`~cracksam.deployment.export`), NNCF's INT8 quantisation
(:mod:`~cracksam.deployment.quantize`) and the INT8 IR of a QAT model
(:mod:`~cracksam.deployment.export_qat`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cracksam.errors import CrackSAMError
from cracksam.inference.backends import missing_dependency


def import_openvino() -> Any:
    """``openvino``, or the one-line error saying how to install it."""
    try:
        import openvino as ov
    except ImportError:
        raise missing_dependency("openvino") from None
    return ov


def check_xml_path(xml_path: str | os.PathLike[str]) -> Path:
    """``xml_path`` as a Path, refused unless it is named ``*.xml``."""
    xml_path = Path(xml_path)
    if xml_path.suffix.lower() != ".xml":
        raise CrackSAMError(f"{xml_path}: an OpenVINO IR must be named *.xml (its weights go to a .bin beside it)")
    return xml_path


def save_ir(ov: Any, model: Any, xml_path: Path, compress_to_fp16: bool) -> Path:
    """Save an IR as atomically as two files allow: into a temp folder beside the target, then
    rename the .bin and then the .xml, so a reader never sees a new .xml with an old .bin
    missing, and a crash before the renames leaves the old IR intact."""
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{xml_path.stem}.", suffix=".tmp", dir=xml_path.parent))
    try:
        tmp_xml = tmp_dir / "model.xml"
        ov.save_model(model, str(tmp_xml), compress_to_fp16=compress_to_fp16)
        os.replace(tmp_xml.with_suffix(".bin"), xml_path.with_suffix(".bin"))
        os.replace(tmp_xml, xml_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return xml_path


__all__ = ["check_xml_path", "import_openvino", "save_ir"]
