"""``pcsep separate`` and ``pcsep inspect --model/--plot`` through the CLI, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import trimesh
from helpers.audio import output_file, sum_error
from helpers.models import save_tiny
from helpers.output import other_lines
from helpers.scenes import QUARTET, person_mesh, room
from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.io.pointcloud import PointCloud, read_cloud, write_ply
from pcsep_cli.separate.types import stem_names

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "pcsep_cli" / "examples" / "quartet"
runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A quartet scene (three players and a conductor), a tiny model, a 44.1 kHz mixture."""
    root = tmp_path_factory.mktemp("sep")
    xyz, _ = room([person_mesh(x, y, s, i) for (x, y), s, i in QUARTET], density=300.0)
    write_ply(root / "scene.ply", PointCloud(xyz))
    empty, _ = room([], density=300.0)
    write_ply(root / "empty.ply", PointCloud(empty))
    audio = 0.2 * np.random.default_rng(0).standard_normal((int(0.7 * 44100), 2))
    sf.write(root / "mix.wav", audio.astype(np.float32), 44100, subtype="FLOAT")
    save_tiny(root / "model")
    return {"root": root, "scene": root / "scene.ply", "empty": root / "empty.ply",
            "mix": root / "mix.wav", "model": root / "model"}  # fmt: skip


def run(*args: str | Path) -> object:
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result: object) -> str:
    """The error: one line, after the progress lines of the stages that ran before it."""
    lines = other_lines(result.output)  # type: ignore[attr-defined]
    assert len(lines) == 1, result.output  # type: ignore[attr-defined]
    return lines[0]


def test_one_stem_per_performer_left_to_right(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("separate", files["mix"], files["scene"], "-o", out, "--model", files["model"],
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    stems = manifest["stems"]
    assert len(stems) == len(QUARTET)
    assert [s["name"] for s in stems] == stem_names([s["instrument"] for s in stems])
    xs = [s["position"][0] for s in stems]
    assert np.allclose(xs, sorted(x for (x, _), _, _ in QUARTET), atol=0.3)
    for s in stems:
        assert s["path"] == f"{s['name']}.wav"  # relative to the manifest's folder
        info = sf.info(out / "mix" / s["path"])
        assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "FLOAT")
        assert 0 < s["confidence"] <= 1
    assert json.loads((out / "mix" / "manifest.json").read_text()) == manifest
    assert manifest["model"]["path"] == str(files["model"])
    assert manifest["manifest"] == str(out / "mix" / "manifest.json")
    # Inputs relative to the manifest too (they share /tmp): the folder moves with its data.
    inputs = [(files["mix"], manifest["audio"]), (files["scene"], *manifest["clouds"])]
    for given, written in inputs:
        assert written.startswith("../") and (out / "mix" / written).resolve() == given.resolve()
    assert sum_error(manifest, files["mix"]) <= 1e-4


def test_human_output_lists_stems(files: dict[str, Path], tmp_path: Path) -> None:
    result = run("separate", files["mix"], files["scene"], "-o", tmp_path, "--model",
                 files["model"], "--no-residual")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "manifest:" in result.output and "violin" in result.output
    assert not list(tmp_path.rglob("residual.wav"))
    manifest = json.loads((tmp_path / "mix" / "manifest.json").read_text())
    assert manifest["residual"] is None and manifest["sum_max_error"] is None


def test_instruments_mode(files: dict[str, Path], tmp_path: Path) -> None:
    labels = "cello,violin,violin,flute"
    result = run("separate", files["mix"], files["scene"], "-o", tmp_path, "--model",
                 files["model"], "--instruments", labels, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert [s["name"] for s in manifest["stems"]] == ["cello", "violin", "violin_2", "flute"]
    assert all(s["confidence"] == 1.0 for s in manifest["stems"])
    assert manifest["mode"] == "labels"
    assert manifest["stems"][0]["position"][0] == pytest.approx(-2.0, abs=0.3)
    # No cloud at all: conditioned on the labels alone.
    alone = run("separate", files["mix"], "-o", tmp_path / "b", "--model", files["model"],
                "--instruments", "flute,cello", "--json")  # fmt: skip
    assert alone.exit_code == 0, alone.output
    stems = json.loads(alone.stdout)["stems"]
    assert [(s["name"], s["position"]) for s in stems] == [("flute", None), ("cello", None)]
    wrong = run("separate", files["mix"], files["scene"], "-o", tmp_path / "c", "--model",
                tmp_path / "no-such-model", "--instruments", "violin")  # fmt: skip
    assert wrong.exit_code == 1
    assert "4 performers found in the cloud, 1 instruments given" in one_line_error(wrong)


def test_one_cloud_per_performer(files: dict[str, Path], tmp_path: Path) -> None:
    clouds = []
    for k, (x, y) in enumerate([(1.0, 0.0), (-1.0, 0.5)]):
        mesh = trimesh.util.concatenate([person_mesh(x, y, instrument="violin")])
        pts, _ = trimesh.sample.sample_surface(mesh, 3000, seed=k)
        clouds.append(tmp_path / f"p{k}.ply")
        write_ply(clouds[-1], PointCloud(np.asarray(pts, dtype=np.float64)))
    result = run("separate", files["mix"], *clouds, "-o", tmp_path / "o", "--model",
                 files["model"], "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["mode"] == "clouds" and len(manifest["stems"]) == 2
    # In the order given, not left to right.
    assert [round(s["position"][0]) for s in manifest["stems"]] == [1, -1]


def test_scene_without_performers_is_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    result = run("separate", files["mix"], files["empty"], "-o", tmp_path, "--model",
                 files["model"])  # fmt: skip
    assert result.exit_code == 1
    assert "no performer found" in one_line_error(result)


def test_inputs_are_checked_before_the_model(files: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    (broken / "model.safetensors").write_bytes(b"junk")
    missing = run("separate", tmp_path / "nope.wav", files["scene"], "-o", tmp_path / "o",
                  "--model", broken)  # fmt: skip
    assert missing.exit_code == 1 and "nope.wav" in one_line_error(missing)
    bad_cloud = tmp_path / "bad.ply"
    bad_cloud.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 5\nend_header\n1 2\n")
    cloud = run("separate", files["mix"], bad_cloud, "-o", tmp_path / "o", "--model", broken)
    assert cloud.exit_code == 1 and "bad.ply" in one_line_error(cloud)
    empty = run("separate", files["mix"], files["empty"], "-o", tmp_path / "o", "--model", broken)
    assert empty.exit_code == 1 and "no performer found" in one_line_error(empty)
    flac8 = tmp_path / "eight.wav"
    sf.write(flac8, np.zeros((100, 9), np.float32), 8000)
    fmt = run("separate", flac8, files["scene"], "--format", "flac", "--model", broken)
    assert fmt.exit_code == 1 and "FLAC holds at most 8 channels" in one_line_error(fmt)
    # With good inputs the broken model is what fails.
    model = run("separate", files["mix"], files["scene"], "-o", tmp_path / "o", "--model", broken)
    assert model.exit_code == 1 and "config" in one_line_error(model)
    assert not (tmp_path / "o").exists()


def test_existing_outputs_are_not_overwritten(files: dict[str, Path], tmp_path: Path) -> None:
    args = ["separate", files["mix"], files["scene"], "-o", tmp_path, "--model", files["model"]]
    assert run(*args).exit_code == 0
    residual = tmp_path / "mix" / "residual.wav"
    residual.write_bytes(b"keep me")
    manifest = json.loads((tmp_path / "mix" / "manifest.json").read_text())
    # Refused before the model loads (a missing model is never reached), naming all outputs.
    again = run(*args[:-1], tmp_path / "no-such-model")
    assert again.exit_code == 1
    stems = [s["path"] for s in manifest["stems"]]
    assert len(stems) >= 4  # more than the four it once named before "and N more"
    assert one_line_error(again) == (
        f"error: {tmp_path / 'mix'}: {len(stems) + 2} outputs exist already: "
        f"{', '.join(stems)}, residual.wav and manifest.json (pass --overwrite to replace them)"
    )
    assert residual.read_bytes() == b"keep me"
    assert not [p for p in tmp_path.rglob("*") if ".pcsep-tmp-" in p.name]
    assert run(*args, "--overwrite").exit_code == 0
    assert sf.info(residual).frames == sf.info(files["mix"]).frames


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder``: a file's bytes, ``None`` for a folder."""
    return {
        p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def test_a_later_output_that_is_a_folder_leaves_o_as_it_found_it(
    files: dict[str, Path], tmp_path: Path
) -> None:
    args = ["separate", files["mix"], files["scene"], "-o", tmp_path, "--model", files["model"]]
    assert run(*args).exit_code == 0
    manifest = json.loads((tmp_path / "mix" / "manifest.json").read_text())
    blocked = tmp_path / "mix" / manifest["stems"][-1]["path"]  # the last stem written
    blocked.unlink()
    blocked.mkdir()
    (blocked / "mine.txt").write_text("the user's")
    before = _snapshot(tmp_path)

    again = run(*args, "--overwrite")

    assert again.exit_code == 1
    assert one_line_error(again) == (
        f"error: {blocked}: is a folder, cannot write a file under this name (remove or "
        "rename that folder, or choose another -o or --filename)"
    )
    assert _snapshot(tmp_path) == before  # no temporary file, no output replaced


def test_a_file_where_the_track_folder_goes_is_named_with_the_fix(
    files: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "mix").write_text("the user's")
    result = run("separate", files["mix"], files["scene"], "-o", tmp_path, "--model",
                 files["model"])  # fmt: skip
    assert result.exit_code == 1
    assert one_line_error(result) == (
        f"error: {tmp_path / 'mix'}: is not a folder (remove or rename that file, or choose "
        "another -o or --filename)"
    )
    assert _snapshot(tmp_path) == {"mix": b"the user's"}


@pytest.mark.parametrize(
    "template", ["../{stem}.{ext}", "/tmp/{stem}.{ext}", "{track}.{ext}", "{stem}/{bogus}"]
)
def test_unsafe_templates_are_refused(files: dict[str, Path], tmp_path: Path, template) -> None:  # noqa: ANN001
    result = run("separate", files["mix"], files["scene"], "-o", tmp_path / "o",
                 "--filename", template, "--model", files["model"])  # fmt: skip
    assert result.exit_code == 2 and "--filename" in result.output
    assert not (tmp_path / "o").exists()


def test_template_format_and_bits(files: dict[str, Path], tmp_path: Path) -> None:
    result = run("separate", files["mix"], files["scene"], "-o", tmp_path, "--model",
                 files["model"], "--filename", "{track}_{stem}.{ext}", "--format", "flac",
                 "--bits", "24", "--clip-mode", "clamp", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert Path(manifest["manifest"]) == tmp_path / "mix_manifest.json"
    for s in manifest["stems"]:
        assert s["path"] == f"mix_{s['name']}.flac"
        assert sf.info(output_file(manifest, s)).subtype == "PCM_24"
    assert sum_error(manifest, files["mix"]) <= 2.0**-23


@pytest.mark.parametrize(("channels", "rate"), [(1, 8000), (8, 96000)])
def test_channels_and_rates(files: dict[str, Path], tmp_path: Path, channels, rate) -> None:  # noqa: ANN001
    audio = 0.3 * np.random.default_rng(1).standard_normal((int(0.4 * rate), channels))
    path = tmp_path / "in.wav"
    sf.write(path, audio.astype(np.float32), rate, subtype="PCM_24")
    result = run("separate", path, files["scene"], "-o", tmp_path, "--model", files["model"],
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    info = sf.info(output_file(manifest, manifest["stems"][0]))
    assert (info.samplerate, info.channels, info.subtype) == (rate, channels, "PCM_24")
    assert sum_error(manifest, path) <= 2.0**-23  # the residual's rounding only


def test_inspect_with_model_and_plot(files: dict[str, Path], tmp_path: Path) -> None:
    png = tmp_path / "scene.png"
    result = run("inspect", files["scene"], "--model", files["model"], "--plot", png, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["performers"]) == len(QUARTET)
    for perf in report["performers"]:
        assert perf["instrument"] in ("violin", "cello", "flute")
        assert 0 < perf["confidence"] <= 1 and perf["points"] > 50
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    table = run("inspect", files["scene"], "--model", files["model"])
    assert table.exit_code == 0, table.output
    # The performers' table: number, instrument, confidence, x, y, z, points; one row each.
    rows = [[c.strip() for c in ln.split("│")[1:-1]] for ln in table.stdout.splitlines()]
    rows = [r for r in rows if len(r) == 7]
    assert [r[:2] for r in rows] == [
        [str(i), p["instrument"]] for i, p in enumerate(report["performers"], 1)
    ]
    shown = [[float(v) for v in r[3:6]] for r in rows]  # 2 decimals; the JSON has 4
    assert np.allclose(shown, [p["position"] for p in report["performers"]], atol=0.0051)
    bad = run("inspect", files["scene"], "--plot", tmp_path / "x.jpg")
    assert bad.exit_code == 2


def test_a_cloud_in_millimetres_is_named_so(files: dict[str, Path], tmp_path: Path) -> None:
    """inspect warns and separate's refusal says --units mm; with it, the run goes through."""
    scene = read_cloud(files["scene"])
    write_ply(tmp_path / "mm.ply", PointCloud(scene.xyz * 1000))
    looks = "its coordinates look like millimetres; pass --units mm"
    shown = run("inspect", tmp_path / "mm.ply", "--json")
    assert shown.exit_code == 0
    [warning] = json.loads(shown.stdout)["warnings"]
    assert warning.startswith(f"{tmp_path / 'mm.ply'}: it spans ") and warning.endswith(looks)
    assert shown.stderr == f"warning: {warning}\n"
    args = ["separate", files["mix"], tmp_path / "mm.ply", "-o", tmp_path / "o", "--model",
            files["model"]]  # fmt: skip
    refused = run(*args)
    assert refused.exit_code == 1
    error = one_line_error(refused)
    assert error.startswith(f"error: {tmp_path / 'mm.ply'}: no performer found")
    assert error.endswith(f"{looks})") and not (tmp_path / "o").exists()
    fixed = run(*args, "--units", "mm", "--json")
    assert fixed.exit_code == 0 and other_lines(fixed.stderr) == []  # progress lines only
    assert len(json.loads(fixed.stdout)["stems"]) == len(QUARTET)


def test_a_stray_far_point_is_warned_about(files: dict[str, Path], tmp_path: Path) -> None:
    """A flying pixel 300 m away: the performers are still found, and the user is told."""
    xyz = read_cloud(files["scene"]).xyz
    write_ply(tmp_path / "stray.ply", PointCloud(np.vstack([xyz, [[300.0, 0.0, 1.0]]])))
    result = run("separate", files["mix"], tmp_path / "stray.ply", "-o", tmp_path / "o",
                 "--model", files["model"], "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["stems"]) == len(QUARTET)
    [warning] = other_lines(result.stderr)
    assert warning.startswith(f"warning: {tmp_path / 'stray.ply'}: it spans 30")
    assert warning.endswith("if its coordinates are not metres, pass --units mm, cm or ft")


def test_shipped_example(files: dict[str, Path], tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The README's first command, with the bundled model when there is one."""
    meta = json.loads((EXAMPLE / "meta.json").read_text())
    size = sum(p.stat().st_size for p in EXAMPLE.iterdir())
    assert size < 3e6 and len(meta["performers"]) == 4
    bundled = (ROOT / "models" / "pcsep-base" / "model.safetensors").is_file()
    model = [] if bundled else ["--model", files["model"]]
    monkeypatch.setenv("PCSEP_MODEL", "pcsep-base")
    result = run("separate", EXAMPLE / "mixture.flac", EXAMPLE / "scene.ply", "-o", tmp_path,
                 *model, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    found = manifest["stems"] + manifest["ignored"]
    assert len(found) == 4  # the scene's four performers are found
    truth = sorted(p["position"][0] for p in meta["performers"])
    assert np.allclose([f["position"][0] for f in found], truth, atol=0.3)
    assert sf.info(output_file(manifest, manifest["stems"][0])).subtype == "PCM_16"
    assert sum_error(manifest, EXAMPLE / "mixture.flac") == 0.0  # 16-bit in, 16-bit out
