"""Microphone geometry in ``pcsep batch``: which ``mics.json`` an item takes (its own
``NAME.mics.json``, else the nearest folder's ``mics.json``, or a CSV's ``mics`` column), and
end to end on real files: each manifest records the file it used, a broken file fails only
the items that use it, and the model's indifference to geometry is said once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.audio import recording, wav
from helpers.batch import folder_of
from helpers.clouds import ply
from typer.testing import CliRunner

from pcsep_cli.batch.plan import discover, read_csv_manifest
from pcsep_cli.cli import app

PAIR = [[-0.1, -3.0, 1.5], [0.1, -3.0, 1.5]]  # two omnis 3 m in front of the duet
WIDE = [{"position": [-0.5, -3.0, 1.5]}, {"position": [0.5, -3.0, 1.5]}]
runner = CliRunner()


def mics(path: Path, entries: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"microphones": entries}))
    return path


def test_a_recordings_own_file_overrides_the_folders(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        wav(tmp_path / f"{name}.wav"), ply(tmp_path / f"{name}.ply")
    shared = mics(tmp_path / "mics.json", PAIR)
    own = mics(tmp_path / "b.mics.json", WIDE)
    typo = mics(tmp_path / "bb.mics.json", WIDE)  # no recording bb.*: reported, never used

    found = discover(tmp_path)

    assert {item.name: item.mics for item in found.items} == {"a": shared, "b": own, "c": shared}
    assert [(u.path, u.reason) for u in found.unpaired] == [
        (typo, "no recording named bb.wav/.flac/... beside it to use it")
    ]


def test_no_file_means_no_geometry(tmp_path: Path) -> None:
    wav(tmp_path / "a.wav"), ply(tmp_path / "a.ply")
    own = mics(tmp_path / "a.mics.json", PAIR)
    wav(tmp_path / "b.wav"), ply(tmp_path / "b.ply")
    found = discover(tmp_path)
    assert {item.name: item.mics for item in found.items} == {"a": own, "b": None}
    assert found.unpaired == []


def test_dataset_examples_take_the_nearest_mics_json(tmp_path: Path) -> None:
    for ex in ("solo", "test/000001", "test/000002", "train/000003"):
        wav(tmp_path / ex / "mixture.wav"), ply(tmp_path / ex / "scene.ply")
    top = mics(tmp_path / "mics.json", PAIR)
    split = mics(tmp_path / "test" / "mics.json", WIDE)
    example = mics(tmp_path / "test" / "000002" / "mics.json", WIDE)
    broken = tmp_path / "train" / "000003" / "mics.json"
    broken.mkdir()  # there, but no file: the item fails on it rather than take the top one

    found = discover(tmp_path)

    assert {item.name: item.mics for item in found.items} == {
        "solo": top,
        "test/000001": split,
        "test/000002": example,
        "train/000003": broken,
    }


def test_csv_manifest_names_each_rows_file(tmp_path: Path) -> None:
    wav(tmp_path / "r1.wav"), ply(tmp_path / "c1.ply"), wav(tmp_path / "r2.wav")
    mics(tmp_path / "mics.json", PAIR)  # not used: a CSV says which file each row takes
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("audio,cloud,mics\nr1.wav,c1.ply,rig/ortf.json\nr2.wav,c1.ply,\n")
    items = read_csv_manifest(csv_path)
    assert [(i.name, i.mics) for i in items] == [("r1", tmp_path / "rig/ortf.json"), ("r2", None)]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCSEP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PCSEP_MODEL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def test_batch_records_each_items_geometry(tmp_path: Path, model: Path, scene_ply: Path) -> None:
    data = folder_of(tmp_path / "data", scene_ply, "abc")
    mics(data / "mics.json", PAIR)
    mics(data / "b.mics.json", WIDE)
    mics(data / "c.mics.json", [*PAIR, [0.0, -3.0, 2.5]])  # three microphones, two channels
    out = tmp_path / "out"

    result = runner.invoke(app, ["batch", str(data), "-o", str(out), "--model", str(model),
                                 "--json"])  # fmt: skip

    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    items = {item["name"]: item for item in report["items"]}
    assert {name: item["status"] for name, item in items.items()} == {
        "a": "done",
        "b": "done",
        "c": "failed",
    }
    assert items["a"]["mics"] == str(data / "mics.json")
    assert items["c"]["error"] == (
        f"{data / 'c.mics.json'}: lists 3 microphones, but the recording {data / 'c.wav'} has "
        "2 channels (list one microphone per channel of the recording, in channel order)"
    )
    for name, file, positions in [("a", "mics.json", PAIR),
                                  ("b", "b.mics.json", [m["position"] for m in WIDE])]:  # fmt: skip
        record = json.loads((out / name / "manifest.json").read_text())["microphones"]
        assert record["file"] == f"../../data/{file}"
        assert record["positions"] == positions and record["used"] is False
    assert result.stderr.count("ignores microphone geometry") == 1


def test_a_folder_without_mics_says_nothing_of_them(
    tmp_path: Path, model: Path, scene_ply: Path
) -> None:
    data = folder_of(tmp_path / "data", scene_ply, "a")
    recording(data / "a.wav", seed=3)
    result = runner.invoke(app, ["batch", str(data), "-o", str(tmp_path / "o"), "--model",
                                 str(model)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "microphone" not in result.stderr
    manifest = json.loads((tmp_path / "o" / "a" / "manifest.json").read_text())
    assert manifest["microphones"] is None
