"""The teacher-logit cache of distillation (``training/teacher.py``): the teacher's identity, what
is stored and read back, which samples are computed, and the progress a long teacher pass prints.
Written against the survivors of a mutation run (docs/testing.md)."""

from __future__ import annotations

import hashlib
import io
import json

import cv2
import numpy as np
import pytest

from cracksam.data import Sample, load_split
from cracksam.data.synthetic import make_dataset
from cracksam.data.transforms import build_transform
from cracksam.errors import CheckpointError
from cracksam.training.teacher import TeacherCache, fill_cache, teacher_identity


def _sha16(*chunks: bytes) -> str:
    return hashlib.sha256(b"".join(chunks)).hexdigest()[:16]


def test_identity_of_a_folder_prefers_its_recorded_weights_checksum(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"weights_sha256": "ab" * 32}))
    (folder / "weights.safetensors").write_bytes(b"w")
    assert teacher_identity(folder) == "ab" * 8


@pytest.mark.parametrize("config", [json.dumps({"format": 2}), "{ not json", None])
def test_identity_of_a_folder_without_a_checksum_hashes_every_file_in_name_order(tmp_path, config):
    folder = tmp_path / "t"
    (folder / "sub").mkdir(parents=True)
    files = {"b.bin": b"bbb", "a.txt": b"aa", "sub/c": b"c"}
    if config is not None:
        files["config.json"] = config.encode()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    want = _sha16(*(files[name] for name in sorted(files, key=lambda n: str(folder / n))))
    assert teacher_identity(folder) == want
    (folder / "sub" / "c").write_bytes(b"C")  # any file changed: another identity
    assert teacher_identity(folder) != want


def test_identity_of_a_file_and_of_an_openvino_pair(tmp_path):
    onnx = tmp_path / "t.onnx"
    onnx.write_bytes(b"onnx bytes" * 300_000)  # more than one 1 MiB read
    assert teacher_identity(onnx) == _sha16(onnx.read_bytes())
    xml, bin_ = tmp_path / "t.xml", tmp_path / "t.bin"
    xml.write_bytes(b"<net/>")
    bin_.write_bytes(b"weights")
    assert teacher_identity(xml) == _sha16(b"<net/>", b"weights")  # the weights file counts too
    bin_.write_bytes(b"other weights")
    assert teacher_identity(xml) == _sha16(b"<net/>", b"other weights")
    bin_.unlink()  # a missing .bin is skipped, not an error
    assert teacher_identity(xml) == _sha16(b"<net/>")


@pytest.fixture
def samples(tmp_path):
    out = []
    for i in range(5):
        img = np.full((40 + 4 * i, 56, 3), 30 * i, np.uint8)
        path = tmp_path / "img" / f"s{i}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), img)
        out.append(Sample(stem=f"s{i}", image=path, mask=path, dataset="d"))
    return out


class RecordingTeacher:
    """Logits that encode the input: channel 1 = the image's mean grey level, channel 0 = minus it."""

    name, precision = "rec", "fp32"

    def __init__(self, size: int = 32) -> None:
        self.image_size = size
        self.batches: list[np.ndarray] = []

    def run(self, x: np.ndarray) -> np.ndarray:
        self.batches.append(x)
        level = x.mean(axis=(1, 2, 3))[:, None, None]
        ones = np.ones((len(x), self.image_size, self.image_size), np.float32)
        return np.stack([-level * ones, level * ones], axis=1)


def test_fill_computes_only_missing_samples_in_batches_and_stores_each_ones_logits(tmp_path, samples):
    cache = TeacherCache(tmp_path / "cache", "rec", 32)
    teacher = RecordingTeacher()
    cache.store(samples[1], np.zeros((2, 32, 32), np.float32))  # already cached: not computed again
    assert cache.missing(samples) == [samples[0], *samples[2:]]
    assert fill_cache(cache, teacher, samples, batch_size=2, progress=False, stream=io.StringIO()) == 4
    assert [len(b) for b in teacher.batches] == [2, 2]
    first = teacher.batches[0]
    assert first.dtype == np.float32 and first.shape == (2, 3, 32, 32) and first.flags.c_contiguous
    resize = build_transform(32, augment=False)
    want = resize(image=cv2.cvtColor(cv2.imread(str(samples[0].image)), cv2.COLOR_BGR2RGB))["image"]
    np.testing.assert_allclose(first[0], want.transpose(2, 0, 1), atol=1e-4)
    for s in (samples[0], *samples[2:]):
        stored = cache.load(s)
        level = np.mean(resize(image=cv2.cvtColor(cv2.imread(str(s.image)), cv2.COLOR_BGR2RGB))["image"])
        assert stored.dtype == np.float16 and stored.shape == (2, 32, 32)
        np.testing.assert_allclose(stored[1], level, rtol=2e-3)
        np.testing.assert_allclose(stored[0], -level, rtol=2e-3)
    np.testing.assert_array_equal(cache.load(samples[1]), 0)  # the old entry was left alone
    assert cache.path(samples[3]) == tmp_path / "cache" / f"{cache.key(samples[3])}.npy"
    assert cache.missing(samples) == []


def test_fill_with_nothing_to_do_touches_no_teacher(tmp_path, samples):
    cache = TeacherCache(tmp_path / "cache", "rec", 32)
    for s in samples:
        cache.store(s, np.zeros((2, 32, 32), np.float32))
    stream = io.StringIO()
    teacher = RecordingTeacher(size=99)  # a size mismatch would fail, but nothing is computed
    assert fill_cache(cache, teacher, samples, progress=False, stream=stream) == 0
    assert teacher.batches == [] and stream.getvalue() == ""


def test_fill_refuses_a_teacher_of_another_input_size(tmp_path, samples):
    with pytest.raises(CheckpointError, match="teacher input size 48 != cache size 32"):
        fill_cache(TeacherCache(tmp_path / "c", "rec", 32), RecordingTeacher(48), samples, progress=False)


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_lines_off_a_terminal_every_tenth_and_at_the_end(tmp_path, monkeypatch):
    import cracksam.training.teacher as teacher_mod

    clock = iter(0.5 * i for i in range(1000))  # each reading half a second after the last
    monkeypatch.setattr(teacher_mod.time, "perf_counter", lambda: next(clock))
    folder = tmp_path / "img"
    folder.mkdir()
    many = []
    for i in range(21):
        path = folder / f"s{i}.png"
        cv2.imwrite(str(path), np.full((16, 16, 3), i, np.uint8))
        many.append(Sample(stem=f"s{i}", image=path, mask=path, dataset="d"))
    stream = _Stream(tty=False)
    assert fill_cache(TeacherCache(tmp_path / "c", "rec", 32), RecordingTeacher(), many, batch_size=1,
                      progress=True, stream=stream) == 21
    lines = stream.getvalue().splitlines()
    assert lines[0] == "teacher logits: 21 image(s) to compute"
    # every = ceil(21 / 10) = 3: a line at 3, 6, ..., 21 (the last image is one of them).
    counts = [int(line.split()[2].split("/")[0]) for line in lines[1:]]
    assert counts == [3, 6, 9, 12, 15, 18, 21]
    assert lines[1].endswith("(6.0 images/s)")  # 3 images in the 0.5 s since the start
    assert all(line.split()[2].endswith("/21") and line.endswith("images/s)") for line in lines[1:])


def test_progress_on_a_terminal_is_a_bar_not_lines_and_no_progress_means_lines(tmp_path, samples):
    tty = _Stream(tty=True)
    fill_cache(TeacherCache(tmp_path / "a", "rec", 32), RecordingTeacher(), samples, progress=True, stream=tty)
    assert tty.getvalue() == ""  # the bar is rich's, on its own console
    default = _Stream(tty=True)  # progress is on by default
    fill_cache(TeacherCache(tmp_path / "c", "rec", 32), RecordingTeacher(), samples, stream=default)
    assert default.getvalue() == ""
    quiet = _Stream(tty=True)
    fill_cache(TeacherCache(tmp_path / "b", "rec", 32), RecordingTeacher(), samples, batch_size=1, progress=False,
               stream=quiet)
    lines = quiet.getvalue().splitlines()
    assert lines[0] == "teacher logits: 5 image(s) to compute"
    # Fewer than ten images: a line after each one.
    assert [line.split()[2] for line in lines[1:]] == ["1/5", "2/5", "3/5", "4/5", "5/5"]


def test_a_teacher_returning_too_few_logits_is_not_stored_out_of_line(tmp_path, samples):
    class Short(RecordingTeacher):
        def run(self, x):
            return super().run(x)[:-1]

    with pytest.raises(ValueError, match="zip"):
        fill_cache(TeacherCache(tmp_path / "c", "rec", 32), Short(), samples, batch_size=2, progress=False,
                   stream=io.StringIO())


@pytest.mark.parametrize("content", [b"garbage, not an npy file", "object"])
def test_an_unreadable_entry_says_which_and_how_to_fix_it(tmp_path, samples, content):
    cache = TeacherCache(tmp_path / "cache", "rec", 32)
    path = cache.path(samples[0])
    path.parent.mkdir(parents=True)
    if content == "object":  # a pickled object array: never loaded (allow_pickle=False)
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"unreadable teacher cache entry for .*s0\.png .*delete the cache"):
        cache.load(samples[0])


def test_an_entry_of_another_size_is_refused_with_both_shapes(tmp_path, samples):
    cache = TeacherCache(tmp_path / "cache", "rec", 32)
    cache.store(samples[0], np.zeros((2, 16, 16), np.float32))
    with pytest.raises(CheckpointError, match=r"shape \(2, 16, 16\), expected \(2, 32, 32\)"):
        cache.load(samples[0])


def test_the_teacher_pass_reports_progress_off_a_terminal(tmp_path):
    from cracksam.training.teacher import TeacherCache, fill_cache

    class Teacher:
        name, precision, image_size = "t", "fp32", 64

        def run(self, x):
            return np.zeros((x.shape[0], 2, 64, 64), np.float32)

    samples = load_split(make_dataset(tmp_path / "d", n=20, size=(64, 64)), "all")
    stream = io.StringIO()  # not a terminal, like a log file
    assert fill_cache(TeacherCache(tmp_path / "c", "t", 64), Teacher(), samples, batch_size=2, stream=stream) == 20
    lines = stream.getvalue().splitlines()
    assert lines[0] == "teacher logits: 20 image(s) to compute"
    assert lines[-1].startswith("teacher logits: 20/20") and len(lines) >= 6
