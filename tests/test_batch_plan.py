"""Batch planning on real files: pairing rules, CSV manifests, shards, resume, stray temps."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers.audio import wav
from helpers.clouds import E57Scan, las, ply, write_e57_file

from pcsep_cli.batch import plan_batch, track_template
from pcsep_cli.batch.plan import (
    BatchItem,
    Shard,
    discover,
    is_finished,
    parse_shard,
    read_csv_manifest,
    shard,
)
from pcsep_cli.errors import DatasetError
from pcsep_cli.io.atomic import TMP_MARKER, _host_tag


def test_pairs_same_stem_and_reports_the_rest(tmp_path: Path) -> None:
    wav(tmp_path / "a.wav"), ply(tmp_path / "a.ply")
    sf.write(tmp_path / "b.flac", np.zeros((400, 1), np.float32), 8000)
    las(tmp_path / "b.las")
    wav(tmp_path / "c.wav"), write_e57_file(tmp_path / "c.e57", E57Scan(xyz=np.eye(3)))
    wav(tmp_path / "lonely.wav")
    ply(tmp_path / "cloud_only.ply")
    wav(tmp_path / "two.wav"), wav(tmp_path / "two.aiff"), ply(tmp_path / "two.ply")
    wav(tmp_path / ".hidden.wav"), ply(tmp_path / ".hidden.ply")
    (tmp_path / "notes.txt").write_text("not an input")

    found = discover(tmp_path)

    assert found.layout == "stems"
    assert found.items == [
        BatchItem("a", tmp_path / "a.wav", tmp_path / "a.ply"),
        BatchItem("b", tmp_path / "b.flac", tmp_path / "b.las"),
        BatchItem("c", tmp_path / "c.wav", tmp_path / "c.e57"),
    ]
    reasons = {u.path.name: u.reason for u in found.unpaired}
    assert set(reasons) == {"cloud_only.ply", "lonely.wav", "two.aiff", "two.ply", "two.wav"}
    assert "no recording" in reasons["cloud_only.ply"]
    assert "no cloud named lonely" in reasons["lonely.wav"]
    assert "several recordings" in reasons["two.ply"]


def test_dataset_layout_one_and_two_levels_deep(tmp_path: Path) -> None:
    for ex in ("solo", "test/000002", "train/000001"):
        wav(tmp_path / ex / "mixture.wav"), ply(tmp_path / ex / "scene.ply")
        wav(tmp_path / ex / "stems" / "violin.wav")  # ground truth: not an input
    wav(tmp_path / "broken" / "mixture.wav")  # no scene
    las(tmp_path / "train" / "000003" / "scene.las")  # no mixture
    out = tmp_path / "out"  # outputs inside the batch folder are never inputs
    wav(out / "solo" / "mixture.wav"), ply(out / "solo" / "scene.ply")

    found = discover(tmp_path, exclude=[out])

    assert found.layout == "dataset"
    assert [i.name for i in found.items] == ["solo", "test/000002", "train/000001"]
    assert found.items[1].audio == tmp_path / "test" / "000002" / "mixture.wav"
    assert found.items[1].cloud == tmp_path / "test" / "000002" / "scene.ply"
    assert [(u.path, u.reason) for u in found.unpaired] == [
        (tmp_path / "broken", "mixture without scene.ply/.las/.laz/.pcd/.e57"),
        (tmp_path / "train" / "000003", "scene without mixture.wav/.flac/..."),
    ]


def test_no_pair_at_all_is_an_error_that_names_the_layouts(tmp_path: Path) -> None:
    wav(tmp_path / "x.wav")
    with pytest.raises(DatasetError, match="found no recording \\+ cloud pair.*--manifest"):
        plan_batch(tmp_path, tmp_path / "out")
    with pytest.raises(DatasetError, match="does not exist"):
        discover(tmp_path / "missing")
    (tmp_path / "empty.csv").write_text("audio,cloud\n")
    with pytest.raises(DatasetError, match="empty.csv: the CSV manifest lists no item"):
        plan_batch(tmp_path, tmp_path / "out", manifest=tmp_path / "empty.csv")


def test_csv_manifest(tmp_path: Path) -> None:
    data = tmp_path / "data"
    wav(data / "r1.wav"), ply(data / "c1.ply"), wav(data / "r2.wav"), las(data / "c2.las")
    csv_path = tmp_path / "list.csv"
    csv_path.write_text(
        "Audio,cloud,name\n"
        "data/r1.wav,data/c1.ply,\n"
        f"{data / 'r2.wav'},data/c2.las,session/take2\n\n",
        encoding="utf-8",
    )
    items = read_csv_manifest(csv_path)
    assert items == [
        BatchItem("r1", tmp_path / "data/r1.wav", tmp_path / "data/c1.ply"),
        BatchItem("session/take2", data / "r2.wav", tmp_path / "data/c2.las"),
    ]
    found = discover(tmp_path / "ignored", manifest=csv_path)
    assert found.layout == "manifest" and found.items == sorted(items)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("audio,name\nx.wav,x\n", "must name the columns audio,cloud"),
        ("audio,cloud\nx.wav,\n", "row 2.*empty audio or cloud"),
        ("audio,cloud,name\na.wav,a.ply,../up\n", "row 2.*not a plain relative path"),
        ("audio,cloud,name\na.wav,a.ply,/abs\n", "not a plain relative path"),
        ("audio,cloud\nx/a.wav,a.ply\ny/A.flac,b.ply\n", "same output folder 'A'"),
    ],
)
def test_csv_manifest_errors(tmp_path: Path, text: str, message: str) -> None:
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_csv_manifest(csv_path)


def test_parse_shard() -> None:
    assert parse_shard("0/4") == Shard(0, 4)
    assert parse_shard(" 3/4 ") == Shard(3, 4)
    assert str(parse_shard("0/1")) == "0/1"
    for bad, message in [
        ("4/4", "K must be in 0..3.*--array=0-3"),
        ("-1/4", "K must be in 0..3"),
        ("1/0", "N >= 1"),
        ("1", "K/N"),
        ("a/b", "K/N"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_shard(bad)


def test_shards_partition_exactly_whatever_the_order() -> None:
    items = [BatchItem(f"t{i:03d}", Path(f"t{i}.wav"), Path(f"t{i}.ply")) for i in range(23)]
    rng = random.Random(0)
    for count in (1, 2, 3, 5, 23, 40):
        parts = [shard(items, Shard(k, count)) for k in range(count)]
        flat = [item for part in parts for item in part]
        assert sorted(flat) == items and len(flat) == len(set(flat)) == 23
        for _ in range(3):
            shuffled = items[:]
            rng.shuffle(shuffled)
            assert [shard(shuffled, Shard(k, count)) for k in range(count)] == parts
    assert shard(items, Shard(1, 4))[:2] == [items[1], items[5]]  # item i -> shard i mod N


def test_shards_equal_for_folders_filled_in_different_orders(tmp_path: Path) -> None:
    names = [f"take{i}" for i in range(7)]
    folders = []
    for label, order in (("one", names), ("two", names[::-1])):
        root = tmp_path / label
        for name in order:
            ply(root / f"{name}.ply"), wav(root / f"{name}.wav")
        folders.append(root)
    split = [
        [[i.name for i in shard(discover(r).items, Shard(k, 3))] for k in range(3)] for r in folders
    ]
    assert (
        split[0]
        == split[1]
        == [["take0", "take3", "take6"], ["take1", "take4"], ["take2", "take5"]]
    )


def _finished(folder: Path, stems: list[str], residual: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        wav(folder / f"{stem}.wav")
    manifest = {"stems": [{"name": s, "path": f"{s}.wav"} for s in stems]}
    if residual:
        wav(folder / "residual.wav")
        manifest["residual"] = {"path": "residual.wav"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_is_finished(tmp_path: Path) -> None:
    done = _finished(tmp_path / "done", ["violin", "cello"]) / "manifest.json"
    assert is_finished(done)
    (done.parent / "cello.wav").unlink()
    assert not is_finished(done)
    assert not is_finished(tmp_path / "absent" / "manifest.json")
    broken = _finished(tmp_path / "broken", ["violin"]) / "manifest.json"
    broken.write_text('{"stems": [{"name": "violin"')  # cut short
    assert not is_finished(broken)
    no_res = _finished(tmp_path / "nores", ["violin"], residual=False) / "manifest.json"
    assert is_finished(no_res)
    no_res.write_text(json.dumps({"stems": [{"name": "violin"}]}))
    assert not is_finished(no_res)  # a stem without a path cannot be checked


def test_is_finished_follows_a_moved_output_folder(tmp_path: Path) -> None:
    old = tmp_path / "cluster" / "out" / "take1"
    wav(old / "violin.wav")
    manifest = {
        "stems": [{"name": "violin", "path": str(old / "violin.wav")}],
        "residual": None,
        "manifest": str(old / "manifest.json"),
    }
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert is_finished(old / "manifest.json")
    new = tmp_path / "laptop" / "take1"
    new.parent.mkdir()
    old.rename(new)
    assert is_finished(new / "manifest.json")
    (new / "violin.wav").unlink()
    assert not is_finished(new / "manifest.json")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_plan_resumes_and_cleans_stray_temps(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    for name in ("a", "b", "c", "d"):
        wav(data / f"{name}.wav"), ply(data / f"{name}.ply")
    _finished(out / "b", ["violin"])
    (out / "c").mkdir()
    stray = out / "c" / f".violin.wav{TMP_MARKER}{_dead_pid()}-{_host_tag()}-0123abcd.wav"
    stray.write_bytes(b"RIFF")
    live = out / "c" / f".cello.wav{TMP_MARKER}{os.getpid()}-{_host_tag()}-0123abcd.wav"
    live.write_bytes(b"RIFF")

    plan = plan_batch(data, out)
    assert [i.name for i in plan.todo] == ["a", "c", "d"]
    assert [i.name for i in plan.finished] == ["b"]
    assert plan.removed_temps == [stray] and not stray.exists() and live.exists()
    assert plan.out_dir(plan.todo[0]) == out / "a"

    again = plan_batch(data, out, resume=False)
    assert [i.name for i in again.todo] == ["a", "b", "c", "d"] and again.finished == []

    part = plan_batch(data, out, part=Shard(1, 2))
    assert [i.name for i in part.todo] == ["d"] and [i.name for i in part.finished] == ["b"]


def test_output_names_follow_the_template(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    wav(data / "a{1}.wav"), ply(data / "a{1}.ply")
    wav(data / "s" / "ex" / "mixture.wav"), ply(data / "s" / "ex" / "scene.ply")
    plan = plan_batch(data, out)
    first, second = plan.todo  # "a{1}" sorts before "s/ex"
    assert plan.manifest_path(first) == out / "a{1}" / "manifest.json"
    assert plan.out_dir(second) == out / "s" / "ex"
    flat = plan_batch(data, out, filename="{track}_{stem}.{ext}")
    assert flat.manifest_path(first) == out / "a{1}_manifest.json"
    assert track_template("{track}/{stem}.{ext}", "a{1}") == "a{{1}}/{stem}.{ext}"
    with pytest.raises(ValueError, match=r"must contain \{track\}"):
        plan_batch(data, out, filename="{stem}.{ext}")
