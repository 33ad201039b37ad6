"""``pcsep batch`` end to end with the real separator and a tiny random model saved in tmp_path.

Scenes come from tests/helpers/scenes.py's room builder (two performers, ~14k points), recordings
are 0.3 s of stereo noise: every item runs the whole pipeline (scene, classification,
chunked masks, files, manifest) in well under a second.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers.audio import recording
from helpers.batch import folder_of
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.io.atomic import TMP_MARKER

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCSEP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PCSEP_MODEL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def batch(*args: str | Path):  # noqa: ANN201 - click's Result
    return runner.invoke(app, ["batch", *map(str, args)])


def summary(result) -> dict:  # noqa: ANN001
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def statuses(report: dict) -> dict[str, str]:
    return {item["name"]: item["status"] for item in report["items"]}


def outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.wav"))}


def test_a_corrupt_item_finishes_the_others(tmp_path: Path, model: Path, scene_ply: Path) -> None:
    data = folder_of(tmp_path / "data", scene_ply, "abcd")
    (data / "b.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00")  # cut short
    (data / "c.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 5\n")  # no end_header
    out = tmp_path / "out"

    result = batch(data, "-o", out, "--model", model)

    assert result.exit_code == 1, result.output
    for name in ("a", "d"):
        manifest = json.loads((out / name / "manifest.json").read_text())
        stems = manifest["stems"]
        assert [s["path"] for s in stems] == [f"{s['name']}.wav" for s in stems]
        assert len(stems) == 2 and all((out / name / s["path"]).is_file() for s in stems)
        # Inputs relative to the manifest's folder: the tree moves as a whole.
        assert manifest["audio"] == f"../../data/{name}.wav"
        assert manifest["clouds"] == [f"../../data/{name}.ply"]
        assert (out / name / "residual.wav").is_file()
    assert not (out / "b").exists() and not (out / "c").exists()
    assert "2 item(s) not separated" in result.stderr
    assert f"b: {data / 'b.wav'}" in result.stderr and f"c: {data / 'c.ply'}" in result.stderr
    assert "4 items: 2 done, 0 skipped, 2 failed" in result.stdout
    assert result.stdout.rstrip().endswith(f"outputs: {out}")  # where to look, last
    assert not list(out.rglob(f"*{TMP_MARKER}*"))


def test_resume_skips_finished_items_without_loading_a_model(
    tmp_path: Path, model: Path, scene_ply: Path
) -> None:
    data, out = folder_of(tmp_path / "data", scene_ply, "ab"), tmp_path / "out"
    assert batch(data, "-o", out, "--model", model).exit_code == 0
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*")}

    # Nothing left to do: the (missing) model is never loaded.
    result = batch(data, "-o", out, "--model", tmp_path / "no-such-model", "--json")

    assert result.exit_code == 0, result.output
    assert statuses(summary(result)) == {"a": "skipped", "b": "skipped"}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == stamps

    (out / "b" / "violin.wav").unlink()  # an incomplete item is redone, only its files written
    result = batch(data, "-o", out, "--model", model, "--json", "--overwrite")
    assert statuses(summary(result)) == {"a": "skipped", "b": "done"}
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items() if p.parent.name == "a")


def test_no_file_is_overwritten_without_overwrite(
    tmp_path: Path, model: Path, scene_ply: Path
) -> None:
    data, out = folder_of(tmp_path / "data", scene_ply, "ab"), tmp_path / "out"
    assert batch(data, "-o", out, "--model", model).exit_code == 0
    (out / "b" / "manifest.json").unlink()  # unfinished: its stems are still there
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()}

    # --no-resume alone would redo "a" over its outputs: a usage error before anything runs
    # (the missing model is never reached).
    result = batch(data, "-o", out, "--model", tmp_path / "no-model", "--no-resume", "--json")

    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        "error: pcsep batch: Invalid value for '--no-resume': it redoes finished items, whose "
        "outputs exist: add --overwrite to replace them (see 'pcsep batch --help')\n"
    )

    result = batch(data, "-o", out, "--model", model, "--json")  # resumed: "b" is unfinished

    assert result.exit_code == 1
    report = summary(result)
    assert statuses(report) == {"a": "skipped", "b": "failed"}
    error = report["items"][1]["error"]
    assert error == f"{out / 'b' / 'residual.wav'}: exists already (pass --overwrite to replace it)"
    assert {
        p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()
    } == before

    result = batch(data, "-o", out, "--model", model, "--no-resume", "--overwrite", "--json")
    assert result.exit_code == 0 and statuses(summary(result)) == {"a": "done", "b": "done"}
    assert (out / "b" / "manifest.json").is_file()


def test_shards_partition_the_folder(tmp_path: Path, model: Path, scene_ply: Path) -> None:
    data = folder_of(tmp_path / "data", scene_ply, "abcd")
    seen = []
    for k in range(3):
        result = batch(
            data, "-o", tmp_path / "out", "--model", model, "--shard", f"{k}/3", "--json"
        )
        assert result.exit_code == 0, result.output
        report = summary(result)
        assert report["shard"] == f"{k}/3" and report["items_total"] == 4
        seen.append(sorted(statuses(report)))
    assert seen == [["a", "d"], ["b"], ["c"]]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == list("abcd")

    bad = batch(data, "-o", tmp_path / "out", "--model", model, "--shard", "3/3")
    assert bad.exit_code == 2 and "0..2" in bad.output


def test_jobs_two_writes_the_same_bytes_as_jobs_one(
    tmp_path: Path, model: Path, scene_ply: Path
) -> None:
    data = folder_of(tmp_path / "data", scene_ply, "abc")
    for jobs in ("1", "2"):
        result = batch(data, "-o", tmp_path / f"j{jobs}", "--model", model, "-j", jobs)
        assert result.exit_code == 0, result.output
    one, two = outputs(tmp_path / "j1"), outputs(tmp_path / "j2")
    assert len(one) == 3 * 3 and one == two


def test_csv_manifest_and_unpaired_files(tmp_path: Path, model: Path, scene_ply: Path) -> None:
    data = tmp_path / "data"
    recording(data / "take one.wav", seed=1)
    shutil.copy(scene_ply, data / "room.ply")
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("audio,cloud,name\ndata/take one.wav,data/room.ply,s1/take1\n")

    result = batch(
        tmp_path, "--manifest", csv_path, "-o", tmp_path / "out", "--model", model, "--json"
    )

    assert result.exit_code == 0, result.output
    report = summary(result)
    assert report["layout"] == "manifest" and statuses(report) == {"s1/take1": "done"}
    assert (tmp_path / "out" / "s1" / "take1" / "manifest.json").is_file()

    # Without the manifest, the same folder has nothing paired: an error that says what to do.
    plain = batch(data, "-o", tmp_path / "out2", "--model", model)
    assert plain.exit_code == 1 and "found no recording + cloud pair" in plain.stderr

    shutil.copy(scene_ply, data / "take one.ply")
    recording(data / "lonely.wav", seed=2)
    result = batch(data, "-o", tmp_path / "out3", "--model", model, "--json")
    assert result.exit_code == 0
    assert "2 file(s) not paired" in result.stderr and "lonely.wav" in result.stderr
    assert {u["path"] for u in summary(result)["unpaired"]} == {
        str(data / "lonely.wav"),
        str(data / "room.ply"),
    }


def test_dataset_layout_and_template(tmp_path: Path, model: Path, scene_ply: Path) -> None:
    data = tmp_path / "dataset"
    for example in ("test/000001", "test/000002"):
        recording(data / example / "mixture.wav", seed=3)
        shutil.copy(scene_ply, data / example / "scene.ply")
    out = tmp_path / "out"

    result = batch(
        data, "-o", out, "--model", model, "--filename", "{track}-{stem}.{ext}", "--format", "flac"
    )

    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (out / "test").iterdir())
    assert names == [
        f"00000{i}-{s}"
        for i in (1, 2)
        for s in ("manifest.json", "residual.flac", "violin.flac", "violin_2.flac")
    ]
    rerun = batch(data, "-o", out, "--model", model, "--filename", "{track}-{stem}.{ext}", "--json")
    assert set(statuses(summary(rerun)).values()) == {"skipped"}

    bad = batch(data, "-o", out, "--model", model, "--filename", "{stem}.{ext}")
    assert bad.exit_code == 2 and "{track}" in bad.output


def test_items_failing_midway_leave_no_folder(tmp_path: Path, model: Path, scene_ply: Path,
                                              full_disk: Path) -> None:  # fmt: skip
    """A disk that fills during the items' writes: run_job made their folders (two levels
    here) and takes them away again; -o is left as it was found (issue 18)."""
    data = tmp_path / "data"
    for name in "ab":
        recording(data / f"{name}.wav", seed=0, seconds=2.0)
        shutil.copy(scene_ply, data / f"{name}.ply")
    out = full_disk / "o"
    out.mkdir()

    result = batch(data, "-o", out, "--model", model, "--filename", "{track}/deep/{stem}.{ext}")

    assert result.exit_code == 1, result.output
    assert "2 item(s) not separated" in result.stderr
    assert "disk full" in result.stderr
    assert list(out.iterdir()) == []  # -o itself existed before: kept
