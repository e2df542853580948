"""Which images ``evaluate`` scores: ``--test FOLDER`` scores all images of a folder without split files
(``--test-split auto``, the default) and says so; a folder with split files keeps its test split;
an explicit ``--test-split`` behaves as before; the counts are in the output, table.json and table.md;
scripts that report test-split numbers ask for the test split explicitly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from cracksam.cli.main import main
from cracksam.evaluation.protocol import ProtocolConfig
from cracksam.evaluation.selection import split_of

ROOT = Path(__file__).resolve().parents[1]


def _write_set(root: Path, n: int) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for i in range(n):
        img = np.full((64, 64, 3), 200, np.uint8)
        mask = np.zeros((64, 64), np.uint8)
        cv2.line(mask, (0, 32), (63, 40), 255, 8)
        img[mask > 0] = 20
        cv2.imwrite(str(root / "images" / f"im{i}.png"), img)
        cv2.imwrite(str(root / "masks" / f"im{i}.png"), mask)
    return root


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from cracksam.models import create, save_trained

    return save_trained(create("unet_mobilenetv3_small", image_size=64), tmp_path_factory.mktemp("m") / "student")


def _run(ckpt, out: Path, capsys, *args: str) -> tuple[str, dict]:
    argv = ["evaluate", "-m", str(ckpt), *args, "--conditions", "clean", "--out", str(out), "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    return capsys.readouterr().out, json.loads((out / "table.json").read_text())


def test_auto_scores_a_folder_without_split_files_whole_and_says_so(tmp_path, ckpt, capsys):
    plain = _write_set(tmp_path / "mydata", 5)  # no split files
    listed = _write_set(tmp_path / "listed", 4)
    (listed / "train.txt").write_text("im0\nim1\n")
    (listed / "test.txt").write_text("im2\nim3\n")
    out, doc = _run(ckpt, tmp_path / "ev", capsys, "--test", str(plain), "--test", str(listed))
    assert ("scored: mydata (--test): all images, 5 image(s) (no split files; pass --test-split test to score "
            "its test split)\n") in out
    assert "scored: listed (--test): test split, 2 image(s)\n" in out  # split files: its test split
    assert [(e["dataset"], e["split"], e["requested"], e["split_files"], e["images"]) for e in doc["scored"]] == [
        ("mydata", "all", "auto", False, 5), ("listed", "test", "auto", True, 2)]
    assert "seeded" not in doc["scored"][0]
    pooled = json.loads((tmp_path / "ev" / "results.json").read_text())[0]
    assert pooled["n_images"] == 7  # 5 + 2 images really went through the model
    md = (tmp_path / "ev" / "table.md").read_text()
    assert "all images of mydata, test split of listed (7 images)" in md
    assert "images scored: mydata 5, listed 2" in md and doc["caption"] in md


def test_an_explicit_test_split_scores_only_the_seeded_test_split(tmp_path, ckpt, capsys):
    plain = _write_set(tmp_path / "mydata", 5)
    out, doc = _run(ckpt, tmp_path / "ev", capsys, "--test", str(plain), "--test-split", "test")
    assert "scored: mydata (--test): test split, 1 of 5 image(s) (no split files: a 15% share" in out
    assert "pass --test-split test" not in out
    (entry,) = doc["scored"]
    assert (entry["split"], entry["requested"], entry["images"], entry["seeded"]["of"]) == ("test", "test", 1, 5)
    assert json.loads((tmp_path / "ev" / "results.json").read_text())[0]["n_images"] == 1
    assert "test split of mydata (1 images)" in doc["caption"] and "images scored: mydata 1" in doc["caption"]


def test_unseen_sets_keep_scoring_everything_and_bad_splits_are_refused(tmp_path, capsys):
    plain = _write_set(tmp_path / "plain", 2)
    listed = _write_set(tmp_path / "listed", 2)
    (listed / "val.txt").write_text("im0\n")
    assert ProtocolConfig(unseen=[str(plain)]).unseen_split == "all"
    assert ProtocolConfig(test=[str(plain)]).test_split == "auto"
    assert split_of(plain, "auto") == "all" and split_of(listed, "auto") == "test"
    (listed / "val.txt").unlink()
    (listed / "splits.tsv").write_text("stem\tsource_image\nim0\ta\nim1\tb\n")  # a split table is split files too
    assert split_of(listed, "auto") == "test"
    for explicit in ("train", "val", "test", "all"):
        assert split_of(plain, explicit) == explicit
    for flag in ("--test-split", "--unseen-split"):
        assert main(["evaluate", "--test", str(plain), flag, "tset", "--print-config"]) == 2
        err = capsys.readouterr().err
        assert f"{flag} must be one of auto, train, val, test, all; got 'tset'" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_folders_are_loaded_each_with_its_own_split_in_order(tmp_path):
    from cracksam.errors import DatasetError
    from cracksam.evaluation.selection import select_samples as _samples

    plain = _write_set(tmp_path / "b_plain", 3)
    listed = _write_set(tmp_path / "a_listed", 3)
    (listed / "test.txt").write_text("im1\n")
    cfg = ProtocolConfig(test=[str(plain), str(listed)])
    got = _samples(cfg.test, cfg.test_split, cfg)
    assert [(s.dataset, s.stem) for s in got] == [("b_plain", "im0"), ("b_plain", "im1"), ("b_plain", "im2"),
                                                  ("a_listed", "im1")]
    twin = _write_set(tmp_path / "other" / "b_plain", 1)
    with pytest.raises(DatasetError, match="distinct names"):
        _samples([str(plain), str(twin)], "auto", cfg)
    (listed / "test.txt").write_text("")  # split files with an empty test split
    with pytest.raises(DatasetError, match="test split of a_listed is empty"):
        _samples([str(listed)], "auto", cfg)


def _evaluate_commands(text: str) -> list[str]:
    """Every `cracksam evaluate` command of a shell script or Markdown file, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if "cracksam evaluate " in line and "--test " in line]


@pytest.mark.parametrize("path", sorted([*ROOT.glob("scripts/*.sh"), ROOT / "docs" / "training.md", ROOT / "README.md",
                                          ROOT / "MODEL_CARD.md", ROOT / "benchmarks" / "RESULTS.md"]),
                         ids=lambda p: p.name)
def test_scripts_and_docs_that_report_test_splits_ask_for_the_test_split(path):
    for command in _evaluate_commands(path.read_text()):
        # A command names its split: test for reported figures, val where a choice was made on validation;
        # never evaluate's default, which scores folders without split files whole.
        assert re.search(r"--test-split (test|val)\b", command), (path, command)


def test_the_default_model_script_asks_for_the_test_split():
    (command,) = _evaluate_commands((ROOT / "scripts" / "train_default_model.sh").read_text())
    assert "--test-split test" in command
