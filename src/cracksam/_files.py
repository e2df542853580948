"""File utilities every layer uses: atomic writes, SHA-256 of files, PNG encoding.

Private (``_files``): the public names stay where users know them (``cracksam.config`` re-exports
the atomic writes, ``cracksam.measurement.write_png``).  numpy and OpenCV are imported when a PNG is
encoded, not here: ``cracksam.config`` imports this module and ``cracksam --help`` must stay fast.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_CHUNK = 1 << 20  # hash files a MiB at a time: weights can be gigabytes


# -- atomic writes ------------------------------------------------------------------------------------


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` so that readers see the old file or the whole new one, never a part."""
    atomic_write_bytes(path, text.encode("utf-8"))


def default_file_mode() -> int:
    """0666 less the process umask: what ``open()`` would give a new file (``mkstemp`` gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a unique temp file beside ``path``, then rename it over ``path``.  The
    file gets the usual permissions (0666 less the umask), not ``mkstemp``'s 0600."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from exc
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` naming the file the caller meant to write, not our hidden temp file (a full disk says
    "No space left on device" and nothing else): same errno, so the same OSError subclass."""
    if exc.errno is None:
        return OSError(f"cannot write {path}: {exc}")
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


# -- hashing ------------------------------------------------------------------------------------------


def update_digest(digest: Any, path: str | os.PathLike[str]) -> Any:
    """Feed the bytes of the file ``path`` to ``digest`` (a hashlib object), a MiB at a time; returns it."""
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the file ``path``'s bytes."""
    return str(update_digest(hashlib.sha256(), path).hexdigest())


def safe_name(name: str, limit: int = 64) -> str:
    """``name`` with anything but letters, digits and ``._-`` replaced by ``_``, cut to ``limit``
    characters (``model`` when nothing is left): a model's name as part of a file or id."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:limit] or "model"


# -- PNG ----------------------------------------------------------------------------------------------


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image: grey (H, W) as is, colour (H, W, 3) taken as RGB (OpenCV writes
    BGR, so it is converted here, once, instead of at every caller)."""
    import cv2
    import numpy as np

    image = np.asarray(array)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV cannot fail on a plain uint8 array
        raise OSError("PNG encoding failed")
    return bytes(buf.tobytes())


def encode_mask_png(mask: np.ndarray) -> bytes:
    """A 0/255 single-channel PNG of a boolean (or 0/1) mask: the masks every command writes."""
    import numpy as np

    return encode_png(np.asarray(mask).astype(np.uint8) * 255)


def write_png_atomic(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """:func:`encode_png` written atomically to ``path``."""
    atomic_write_bytes(path, encode_png(array))


__all__ = ["atomic_write_bytes", "atomic_write_text", "default_file_mode", "encode_mask_png", "encode_png",
           "safe_name", "sha256_file", "update_digest", "write_png_atomic"]
