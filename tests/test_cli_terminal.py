"""What the CLI prints from files and models cannot drive the terminal (issue 18).

File names, item names, class names and messages quoting them reach the terminal through one
helper, :func:`pcsep_cli.cli.app.safe_text`: control characters (ESC, CR, BEL, NUL, C1),
bidirectional overrides and undecodable bytes are shown as escapes, rich markup as written.
Each test plants such text where a user could (a file name, a CSV, a model's class names) and
requires the output to hold its escaped form and no control character.
"""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from pcsep_cli.batch.plan import BatchItem, Discovery
from pcsep_cli.batch.run import BatchPlan, BatchSummary, ItemResult
from pcsep_cli.cli import app
from pcsep_cli.cli.app import safe_text
from pcsep_cli.cli.display import BatchDisplay, print_failures, print_summary
from pcsep_cli.cli.separate import _print_manifest

runner = CliRunner()
HOSTILE = "vi\x1b[31molin\x1b]0;owned\x07\r\x00\x9b2J\u202e[bold]x[/bold]"
SHOWN = r"vi\x1b[31molin\x1b]0;owned\x07\r\x00\x9b2J\u202e[bold]x[/bold]"
# What a file name may hold (no NUL; no CR or newline, which end a CSV row).
FILE = "vi\x1b[31molin\x1b]0;owned\x07\x9b2J\u202e[bold]x[/bold]"
FILE_SHOWN = r"vi\x1b[31molin\x1b]0;owned\x07\x9b2J\u202e[bold]x[/bold]"


def controls(text: str) -> list[str]:
    """Control characters in ``text`` other than the newlines that end lines."""
    return [c for c in text.replace("\n", "") if unicodedata.category(c) == "Cc" or c == "\u202e"]


def rendered(markup: str) -> str:
    """What a terminal console shows for ``markup``."""
    console = Console(file=io.StringIO(), force_terminal=False, width=400, highlight=False)
    console.print(markup, soft_wrap=True)
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain name.wav", "plain name.wav"),
        ("émoji 🎻 take", "émoji 🎻 take"),
        ("\x1b[2J\x1b[H", r"\x1b[2J\x1b[H"),
        ("a\nb\rc\td\x7f", r"a\nb\rc\td\x7f"),
        ("\x85\x9b", r"\x85\x9b"),
        ("rtl\u202egnp.exe", r"rtl\u202egnp.exe"),
        ("bad\udcffbyte", r"bad\udcffbyte"),
        ("[red]not red[/red]", "[red]not red[/red]"),
        (Path("x\x07.ply"), r"x\x07.ply"),
    ],
)
def test_safe_text_shows_controls_as_escapes_and_markup_as_written(
    text: object, shown: str
) -> None:
    out = rendered(safe_text(text))
    assert out == shown + "\n"
    assert controls(out) == []


def test_safe_text_escapes_markup_after_escaping_controls() -> None:
    """A backslash made by the control escape must not unescape markup that follows it."""
    assert rendered(safe_text("\x1b[bold]x")) == "\\x1b[bold]x\n"


def test_error_line_of_a_file_named_with_escapes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect", str(tmp_path / f"{FILE}.ply")])
    assert result.exit_code == 1
    assert controls(result.output) == [], repr(result.output)
    assert f"{FILE_SHOWN}.ply: no such file" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_inspect_model_class_names_with_escapes(
    scene_ply: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported case: a model's class name holding terminal escapes, printed raw by
    ``inspect --model`` (class names are checked when a model loads; this is the second line)."""
    from pcsep_cli.separate.separator import Separator

    class Classifier:
        def classify(self, performers: list) -> list[tuple[str, float]]:
            return [(HOSTILE, 0.5) for _ in performers]

    monkeypatch.setattr(Separator, "from_pretrained", lambda *a, **k: Classifier())
    result = runner.invoke(
        app, ["inspect", str(scene_ply), "--model", "any"], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 0, result.output
    assert controls(result.output) == [], repr(result.output)
    assert SHOWN in result.output


def test_manifest_table_escapes_names_paths_and_instruments(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    _print_manifest(
        {
            "audio": f"/in/{HOSTILE}.wav",
            "stems": [
                {
                    "name": HOSTILE,
                    "instrument": HOSTILE,
                    "confidence": 0.5,
                    "position": None,
                    "path": f"/out/{HOSTILE}.wav",
                }
            ],
            "residual": {"path": f"/out/{HOSTILE}/residual.wav"},
            "ignored": [],
            "manifest": f"/out/{HOSTILE}/manifest.json",
        }
    )
    out = capsys.readouterr().out
    assert controls(out) == [], repr(out)
    assert f"manifest: /out/{SHOWN}/manifest.json" in out


def _summary(tmp_path: Path) -> BatchSummary:
    item = BatchItem(HOSTILE, tmp_path / "a.wav", tmp_path / "a.ply")
    plan = BatchPlan(tmp_path, tmp_path / "out", "{track}/{stem}.{ext}",
                     Discovery([item], [], "manifest"), None, [item], [])  # fmt: skip
    failed = ItemResult(item, tmp_path, "failed", 0.1, (), f"{HOSTILE}.wav: is damaged")
    return BatchSummary(plan, [failed], 0.1)


def test_batch_display_summary_and_failures_escape_item_names_and_errors(tmp_path: Path) -> None:
    summary = _summary(tmp_path)
    out = io.StringIO()
    # Not a terminal: rich adds no styles of its own, so any control character is planted.
    console = Console(file=out, force_terminal=False, width=400, highlight=False)
    with BatchDisplay(console, summary.plan) as display:
        display.item_started(summary.results[0].item)
        display.item_finished(summary.results[0])
    print_summary(console, summary)
    print_failures(console, summary, debug=False)
    plain = out.getvalue()
    assert controls(plain) == [], repr(plain)
    assert f"failed: {SHOWN}: {SHOWN}.wav: is damaged" in plain
    assert f"  {SHOWN}: {SHOWN}.wav: is damaged" in plain


def test_batch_csv_with_escapes_in_paths(tmp_path: Path, model: Path) -> None:
    """A CSV (a file from elsewhere) whose paths hold escapes: the failures are escaped."""
    csv = tmp_path / "m.csv"
    csv.write_text(f"audio,cloud\n{FILE}.wav,x.ply\n", encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(tmp_path), "--manifest", str(csv), "-o", str(out),
                                 "--model", str(model)], env={"COLUMNS": "300"})  # fmt: skip
    assert result.exit_code == 1, result.output
    assert controls(result.output) == [], repr(result.output)
    assert f"{FILE_SHOWN}.wav: no such file" in result.output
    assert not out.exists() or list(out.rglob("*")) == []
