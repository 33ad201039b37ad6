"""Random names and templates thrown at ``pcsep separate`` and ``pcsep batch`` (issue 18).

Hypothesis draws a recording's file name, a ``--filename`` template and a CSV item name from
pieces that broke pcsep before (format specs that pad a name to gigabytes, control
characters, terminal escapes, ``..``, braces, names past 255 bytes, NUL) mixed with plain
text, and runs both commands through ``CliRunner`` on a tiny model and a two-performer scene.
Whatever the names, each run must end with exit code 0, 1 or 2, no traceback and no control
character on the terminal; a failed ``separate`` (and a batch error before any item) is one
line on stderr; a failed run leaves nothing under ``-o``; and nothing is written outside
``-o``. 50 examples per command, derandomized: the same inputs in every run.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import unicodedata
from pathlib import Path

import pytest
from helpers.audio import output_file, wav
from helpers.output import other_lines
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pcsep_cli.cli import app

runner = CliRunner()
EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

NASTY = ["\x1b[31m", "\x1b]0;title\x07", "\x1b[2J", "\n", "\r", "\t", "\x7f", "\x85",
         "\x9b", "\u202e", "{", "}", "{{", "}}", ".", "..", " ", "é", "🎻", "[bold]", "\\", "%s",
         "-"]  # fmt: skip
plain = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
    max_size=10,
)
long_run = st.integers(100, 250).map(lambda n: "L" * n)
piece = st.one_of(plain, st.sampled_from(NASTY), long_run)


def _fit(name: str) -> str:
    """At most 240 bytes: with ``.wav`` still a name a file system takes."""
    return name.encode("utf-8")[:240].decode("utf-8", "ignore")


recording_name = st.lists(piece, min_size=1, max_size=4).map("".join).map(_fit).filter(bool)

FIELDS = ["{track}", "{stem}", "{instrument}", "{ext}", "{stem:>300}", "{stem:>300000000}",
          "{stem!r}", "{track!s}", "{stem:{ext}}", "{nope}", "{}", "{0}", "{stem.upper}",
          "{stem[0]}"]  # fmt: skip
LITERALS = ["/", "../", "/abs/", "x" * 300, "\x1b[2J", "\n", "\x00", ".", "..", "_", "deep/",
            "{", "}", "{{", "}}", " ", "C:\\"]  # fmt: skip
template = st.one_of(
    st.sampled_from(
        ["{track}/{stem}.{ext}", "{track}_{stem}.{ext}", "{track}/{instrument}/{stem}.{ext}"]
    ),
    st.lists(
        st.one_of(st.sampled_from(FIELDS), st.sampled_from(LITERALS), plain),
        min_size=1,
        max_size=7,
    ).map("".join),
)
csv_name = st.one_of(
    st.none(),
    recording_name,
    st.lists(st.one_of(piece, st.sampled_from(["/", "\x00", "../", "a/b"])), min_size=1,
             max_size=4).map("".join),
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from helpers.models import save_tiny

    return save_tiny(tmp_path_factory.mktemp("hostile") / "model", sample_rate=8000)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCSEP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "200")


def _recording(folder: Path, name: str) -> Path:
    try:
        return wav(folder / f"{name}.wav", seconds=0.05)
    except (OSError, RuntimeError):  # too long for the file system: not a file a user can have
        assume(False)
        raise


def _everything(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def _check(result, root: Path, before: set[Path], out: Path) -> None:  # noqa: ANN001
    event(f"exit {result.exit_code}")
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code in (0, 1, 2), output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in output
    controls = [c for c in output.replace("\n", "") if unicodedata.category(c) == "Cc"]
    assert controls == [], repr(output)
    written = _everything(root) - before
    outside = [p for p in written if out != p and out not in p.parents]
    assert outside == [], outside
    for path in _everything(out) if out.exists() else ():
        assert path.resolve().is_relative_to(out.resolve()), path


@EXAMPLES
@given(name=recording_name, filename=template)
def test_separate_with_any_recording_name_and_template(
    name: str, filename: str, tiny: Path, scene_ply: Path
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        audio = _recording(root, name)
        shutil.copy(scene_ply, root / "scene.ply")
        out = root / "out"
        before = _everything(root)
        result = runner.invoke(
            app,
            ["separate", str(audio), str(root / "scene.ply"), "-o", str(out), "--model",
             str(tiny), "--filename", filename, "--json"],
        )  # fmt: skip
        _check(result, root, before, out)
        if result.exit_code == 0:
            manifest = json.loads(result.stdout)
            assert all(output_file(manifest, s).is_file() for s in manifest["stems"])
        else:
            lines = other_lines(result.stderr)  # the error, after any progress lines
            assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
            assert not out.exists() or list(out.iterdir()) == []


@EXAMPLES
@given(name=recording_name, item=csv_name, filename=template)
def test_batch_with_any_names_and_template(
    name: str, item: str | None, filename: str, tiny: Path, scene_ply: Path
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        _recording(data, name)
        shutil.copy(scene_ply, data / "scene.ply")
        with open(data / "items.csv", "w", newline="", encoding="utf-8") as handle:
            rows = [["audio", "cloud", "name"], [f"{name}.wav", "scene.ply", item or ""]]
            csv.writer(handle).writerows(rows)
        out = root / "out"
        before = _everything(root)
        result = runner.invoke(
            app,
            ["batch", str(data), "--manifest", str(data / "items.csv"), "-o", str(out),
             "--model", str(tiny), "--filename", filename, "--json"],
        )  # fmt: skip
        _check(result, root, before, out)
        if result.exit_code == 0:
            (done,) = json.loads(result.stdout)["items"]
            assert done["status"] == "done"
            return
        if not result.stdout.strip():  # refused before any item ran: one line
            lines = other_lines(result.stderr)  # the error, after any progress lines
            assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        else:  # the item failed: its error is one line
            (failed,) = json.loads(result.stdout)["items"]
            assert failed["status"] == "failed" and "\n" not in failed["error"]
            assert not failed["error"].startswith("internal error"), failed["error"]
        assert not out.exists() or list(out.iterdir()) == []
