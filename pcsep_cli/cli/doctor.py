"""``pcsep doctor``: versions, devices, folders, the default model and audio formats."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from pcsep_cli.cli.app import EXIT_FAILED, safe_text, stdout_console

EXAMPLES = """[bold]Examples[/]
pcsep doctor             # paste its output into a bug report
pcsep doctor --json > doctor.json"""


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check this installation: versions, devices, folders, the default model, audio formats.

    Exit status 1 when the default model does not load; missing extras are reported only.
    """
    from pcsep_cli.doctor import diagnose

    report = diagnose()
    if as_json:
        typer.echo(json.dumps(report))
    else:
        _print_report(report)
    if any(p["fatal"] for p in report["problems"]):
        raise typer.Exit(EXIT_FAILED)


def _print_report(report: dict[str, Any]) -> None:
    console = stdout_console()
    rows = _rows(report)
    indent = max(_width(name) for name, _ in rows) + 2
    for name, value in rows:
        for line in _row_lines(name, value, indent, console.width):
            console.print(line, soft_wrap=True)
    for problem in report["problems"]:
        kind = "[bold red]error[/]" if problem["fatal"] else "[yellow]warning[/]"
        console.print(f"{kind}: {safe_text(problem['message'])}", soft_wrap=True)
    if not report["problems"]:
        console.print("no problem found")


class _Whole(str):
    """A piece of a row's value never broken across lines: a path (with what encloses it)."""


_Value = list[str]  # words to wrap, and _Whole pieces


def _width(text: str) -> int:
    from rich.text import Text

    return Text.from_markup(safe_text(text)).cell_len


def _row_lines(name: str, value: _Value, indent: int, width: int) -> list[str]:
    """One row as lines of markup, none padded: the name, then the value from column
    ``indent``, wrapped between words. A path goes whole onto the next line when it does not
    fit, and onto a line of its own (indented two spaces, folded only by the terminal) when it
    does not fit from ``indent`` either. Rich's table cut such paths with an ellipsis."""
    atoms = [
        a for piece in value for a in ([piece] if isinstance(piece, _Whole) else piece.split())
    ]
    lines: list[str] = []
    line, used = safe_text(name).ljust(indent), indent  # the name is ASCII (a label or $VAR)
    empty = True  # nothing of the value on this line yet
    for atom in atoms:
        size = _width(atom)
        if not empty and used + 1 + size > width:
            lines.append(line)
            line, used, empty = " " * indent, indent, True
        if empty and used + size > width:  # too long even from the indent: a line of its own
            if line.strip():
                lines.append(line.rstrip())
            lines.append(f"  {safe_text(atom)}")
            line, used = " " * indent, indent
            continue
        line += ("" if empty else " ") + safe_text(atom)
        used += size + (0 if empty else 1)
        empty = False
    if not empty or not lines:
        lines.append(line.rstrip())
    return lines


def _version(version: str | None) -> str:
    return version or "not installed"


def _rows(report: dict[str, Any]) -> list[tuple[str, _Value]]:
    """``(name, value)`` lines of the readable report, in the order a bug report reads them."""
    pkg, tor, paths, model, audio = (
        report["packages"],
        report["torch"],
        report["paths"],
        report["model"],
        report["audio"],
    )
    py, plat = report["python"], report["platform"]
    bundled = paths["bundled_models"]
    rows: list[tuple[str, _Value]] = [
        ("pcsep", [report["pcsep"]["version"], _Whole(f"({report['pcsep']['path']})")]),
        ("python", [f"{py['version']} {py['implementation']}", _Whole(f"({py['executable']})")]),
        ("platform", [plat["platform"]]),
        ("torch", [_version(pkg["torch"])]),
        ("numpy", [_version(pkg["numpy"])]),
        ("soundfile", [f"{_version(pkg['soundfile'])} (libsndfile {audio['libsndfile'] or '?'})"]),
        ("laspy", [f"{_version(pkg['laspy'])} (lazrs {_version(pkg['lazrs'])})"]),
        ("E57 reader", [_version(pkg["e57"]) + ("" if pkg["e57"] else " (pye57)")]),
        ("huggingface_hub", [_version(pkg["huggingface_hub"])]),
        ("typer / rich", [f"{_version(pkg['typer'])} / {_version(pkg['rich'])}"]),
        (
            "torchsparse",
            [_version(pkg["torchsparse"]) + ("" if pkg["torchsparse"] else " (optional)")],
        ),
        ("devices", [_devices(tor)]),
        ("torch threads", [f"{tor['threads']} of {tor['cpus']} CPUs"]),
        (
            "settings",
            [_Whole(paths["settings_file"]), "" if paths["settings_exist"] else "(none saved)"],
        ),
        ("model cache", [_Whole(paths["hub_cache"])]),
        (
            "bundled models",
            [_Whole(p + ",") for p in bundled[:-1]] + [_Whole(p) for p in bundled[-1:]]
            or ["none found"],
        ),
    ]
    for name, value in paths["environment"].items():
        rows.append((f"${name}", [_Whole(value)]))
    rows.append(("default model", _model(model)))
    writable = audio["writable"]
    rows.append(
        (
            "audio output",
            [
                ", ".join(f"{k} {'yes' if ok else 'NO'}" for k, ok in writable.items())
                + f"; {len(audio['formats'])} formats in all"
            ],
        )
    )
    return rows


def _devices(tor: dict[str, Any]) -> str:
    cuda, mps = tor["cuda"], tor["mps"]
    if cuda is None:
        return "unknown (torch does not import)"
    parts = ["cpu"]
    if cuda["available"]:
        parts.append(f"cuda {cuda['version']}: " + ", ".join(cuda["devices"]))
    else:
        parts.append("CUDA not available")
    parts.append("mps" if mps["available"] else "MPS not available")
    return "; ".join(parts)


def _model(model: dict[str, Any]) -> _Value:
    ref = [_Whole(model["ref"] or "?"), f"({model['origin'] or 'unknown'})"]  # a path, maybe
    if model["loaded"] is None:
        return ref
    if not model["loaded"]:
        return [*ref[:-1], ref[-1] + ":", "does NOT load"]
    return [
        *ref[:-1],
        ref[-1] + ":",
        f"loads in {model['seconds']:.2f} s offline; {model['source']}, "
        f"{model['parameters']:,} parameters, {model['sample_rate']:,} Hz, "
        f"{len(model['classes'])} classes",
    ]
