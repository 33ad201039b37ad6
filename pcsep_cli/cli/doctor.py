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
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    for name, value in _rows(report):
        table.add_row(name, safe_text(value))
    console = stdout_console()
    console.print(table)
    for problem in report["problems"]:
        kind = "[bold red]error[/]" if problem["fatal"] else "[yellow]warning[/]"
        console.print(f"{kind}: {safe_text(problem['message'])}", soft_wrap=True)
    if not report["problems"]:
        console.print("no problem found")


def _version(version: str | None) -> str:
    return version or "not installed"


def _rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """``(name, value)`` lines of the readable report, in the order a bug report reads them."""
    pkg, tor, paths, model, audio = (
        report["packages"],
        report["torch"],
        report["paths"],
        report["model"],
        report["audio"],
    )
    py, plat = report["python"], report["platform"]
    rows = [
        ("pcsep", f"{report['pcsep']['version']} ({report['pcsep']['path']})"),
        ("python", f"{py['version']} {py['implementation']} ({py['executable']})"),
        ("platform", plat["platform"]),
        ("torch", _version(pkg["torch"])),
        ("numpy", _version(pkg["numpy"])),
        ("soundfile", f"{_version(pkg['soundfile'])} (libsndfile {audio['libsndfile'] or '?'})"),
        ("laspy", f"{_version(pkg['laspy'])} (lazrs {_version(pkg['lazrs'])})"),
        ("E57 reader", _version(pkg["e57"]) + ("" if pkg["e57"] else " (pye57)")),
        ("huggingface_hub", _version(pkg["huggingface_hub"])),
        ("typer / rich", f"{_version(pkg['typer'])} / {_version(pkg['rich'])}"),
        (
            "torchsparse",
            _version(pkg["torchsparse"]) + ("" if pkg["torchsparse"] else " (optional)"),
        ),
        ("devices", _devices(tor)),
        ("torch threads", f"{tor['threads']} of {tor['cpus']} CPUs"),
        ("settings", paths["settings_file"] + ("" if paths["settings_exist"] else " (none saved)")),
        ("model cache", paths["hub_cache"]),
        ("bundled models", ", ".join(paths["bundled_models"]) or "none found"),
    ]
    for name, value in paths["environment"].items():
        rows.append((f"${name}", value))
    rows.append(("default model", _model(model)))
    writable = audio["writable"]
    rows.append(
        (
            "audio output",
            ", ".join(f"{k} {'yes' if ok else 'NO'}" for k, ok in writable.items())
            + f"; {len(audio['formats'])} formats in all",
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


def _model(model: dict[str, Any]) -> str:
    ref = f"{model['ref'] or '?'} ({model['origin'] or 'unknown'})"
    if model["loaded"] is None:
        return ref
    if not model["loaded"]:
        return f"{ref}: does NOT load"
    return (
        f"{ref}: loads in {model['seconds']:.2f} s offline; {model['source']}, "
        f"{model['parameters']:,} parameters, {model['sample_rate']:,} Hz, "
        f"{len(model['classes'])} classes"
    )
