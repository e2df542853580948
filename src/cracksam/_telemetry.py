"""No telemetry from the runtimes cracksam drives: nothing written outside ``--out`` and the cache.

ONNX Runtime (recent versions; 1.32 was checked) keeps a device id and an event database in
``~/.cache/Microsoft/DeveloperTools`` unless ``ORT_DISABLE_TELEMETRY`` is set before it is
imported; OpenVINO's converter and NNCF write a client id and statistics to ``~/intel`` (and send
them) through the ``openvino_telemetry`` package, and fall back to their own no-op stub when that
package cannot be imported.  Both are switched off when cracksam is imported, before either runtime
is.  ``CRACKSAM_ALLOW_TELEMETRY=1`` leaves them as they come (an ``ORT_DISABLE_TELEMETRY`` of the
user's own is always kept).
What cracksam writes, and where: ``docs/configuration.md`` (Files written outside --out).
"""

from __future__ import annotations

import os
import sys

ALLOW_ENV = "CRACKSAM_ALLOW_TELEMETRY"


def switch_off_runtime_telemetry() -> None:
    if os.environ.get(ALLOW_ENV) == "1":
        return
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    # A None entry makes `import openvino_telemetry` raise ImportError: OpenVINO and NNCF then use their stub.
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
