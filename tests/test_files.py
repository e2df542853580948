"""The private file utilities (``cracksam._files``) every layer writes and hashes through, and their
error on a full disk."""

from __future__ import annotations

import errno
import hashlib

import cv2
import numpy as np
import pytest

from cracksam import _files


def _decode(data: bytes, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)


def test_png_encoding_keeps_rgb_grey_and_masks_exactly():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    # Colour is taken as RGB: decoded by OpenCV (BGR) it comes back with the channels reversed.
    np.testing.assert_array_equal(_decode(_files.encode_png(rgb))[..., ::-1], rgb)
    grey = rng.integers(0, 256, (5, 4), dtype=np.uint8)
    np.testing.assert_array_equal(_decode(_files.encode_png(grey)), grey)
    mask = rng.random((6, 6)) > 0.5
    decoded = _decode(_files.encode_mask_png(mask))
    assert decoded.ndim == 2 and set(np.unique(decoded)) <= {0, 255}
    np.testing.assert_array_equal(decoded == 255, mask)


def test_write_png_atomic_writes_the_encoded_bytes(tmp_path):
    rgb = np.zeros((3, 3, 3), np.uint8)
    rgb[..., 0] = 200  # red
    target = tmp_path / "sub" / "a.png"
    _files.write_png_atomic(target, rgb)
    assert target.read_bytes() == _files.encode_png(rgb)
    assert _decode(target.read_bytes())[0, 0].tolist() == [0, 0, 200]  # BGR on disk: red is last
    assert [p.name for p in target.parent.iterdir()] == ["a.png"]  # no temporary file left


def test_sha256_of_a_file_is_that_of_its_bytes(tmp_path):
    data = bytes(range(256)) * 9000  # 2.3 MB: several 1 MiB read chunks
    path = tmp_path / "w.bin"
    path.write_bytes(data)
    assert _files.sha256_file(path) == hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256(b"prefix")
    assert _files.update_digest(digest, path).hexdigest() == hashlib.sha256(b"prefix" + data).hexdigest()


def test_safe_name():
    assert _files.safe_name("my model (v2).onnx", 64) == "my_model__v2_.onnx"
    assert _files.safe_name("abcdef", 3) == "abc"
    assert _files.safe_name("", 10) == "model"


def test_config_still_exports_the_atomic_writes():
    from cracksam import config

    assert config.atomic_write_bytes is _files.atomic_write_bytes
    assert config.atomic_write_text is _files.atomic_write_text
    assert config.default_file_mode is _files.default_file_mode


def test_a_full_disk_names_the_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    def full(_fd):
        raise OSError(errno.ENOSPC, "No space left on device")  # what the kernel says: no file name

    monkeypatch.setattr(_files.os, "fsync", full)
    target = tmp_path / "out" / "a_mask.png"
    with pytest.raises(OSError) as err:
        _files.atomic_write_bytes(target, b"data")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert list((tmp_path / "out").iterdir()) == []
