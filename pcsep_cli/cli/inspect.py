"""``pcsep inspect``: what a cloud holds, and the performers a model finds in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pcsep_cli.cli.app import (
    UnitsOpt,
    print_warnings,
    safe_text,
    stdout_console,
)

EXAMPLES = """[bold]Examples[/]
pcsep inspect scene.ply
pcsep inspect scan.las --units mm --json
pcsep inspect scene.ply --model pcsep-base --plot scene.png"""


def inspect(
    cloud: Annotated[Path, typer.Argument(help="Point cloud: PLY, LAS, LAZ, PCD or E57.")],
    units: UnitsOpt = None,
    model: Annotated[
        str | None,
        typer.Option(metavar="REF", help="Find the performers and classify them with this model."),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Write a PNG: a top view and a front view (from -y), in metres, performers "
            "boxed and labelled.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Report a point cloud's format, size, bounds and colours (and performers with --model)."""
    from pcsep_cli.io.pointcloud import read_cloud, units_warning

    if plot is not None and plot.suffix.lower() != ".png":
        raise typer.BadParameter(f"--plot must name a .png file, got {plot}")
    pc = read_cloud(cloud, units=units)
    report: dict[str, Any] = {
        "file": str(cloud),
        "format": pc.format,
        "points": pc.num_points,
        "bounds": {"min": pc.bounds[0].tolist(), "max": pc.bounds[1].tolist()},
        "has_rgb": pc.rgb is not None,
        "warnings": [f"{cloud}: {word}" for word in [units_warning(pc)] if word],
    }
    if model is not None or plot is not None:
        report["performers"] = _inspect_performers(pc, model, plot)
    if as_json:
        typer.echo(json.dumps(report))
        print_warnings(report["warnings"])
        return
    from rich.table import Table

    console = stdout_console()
    # The path on a line of its own, whole (a table title would break it to the table's width).
    console.print(safe_text(str(cloud)), style="italic", soft_wrap=True)
    table = Table(show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_row("format", safe_text(pc.format))
    table.add_row("points", f"{pc.num_points:,}")
    if pc.dropped:
        table.add_row("dropped", f"{pc.dropped:,} non-finite or missing points")
    lo, hi = pc.bounds
    table.add_row("bounds min", "  ".join(f"{v:.3f}" for v in lo))
    table.add_row("bounds max", "  ".join(f"{v:.3f}" for v in hi))
    table.add_row("extent (m)", "  ".join(f"{v:.3f}" for v in hi - lo))
    table.add_row("colour", "yes" if pc.rgb is not None else "no")
    table.add_row("intensity", "yes" if pc.intensity is not None else "no")
    console.print(table)
    if "performers" in report:
        console.print(_performer_table(report["performers"]))
    print_warnings(report["warnings"])
    if plot is not None:
        console.print(f"plot: {safe_text(str(plot))}", soft_wrap=True)


def _performer_table(performers: list[dict[str, Any]]) -> Any:
    """One row per performer: instrument, confidence, position (the plot's and the manifest's
    coordinates), points; nothing in it wraps."""
    from rich.table import Table

    table = Table()
    table.add_column("performer", justify="right", no_wrap=True)
    table.add_column("instrument", no_wrap=True)
    table.add_column("confidence", justify="right", no_wrap=True)
    for axis in "xyz":
        table.add_column(f"{axis} (m)", justify="right", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    for i, perf in enumerate(performers, 1):
        conf = perf["confidence"]
        table.add_row(
            str(i),
            safe_text(perf["instrument"] or "?"),
            "" if conf is None else f"{100 * conf:.0f}%",
            *(f"{v:.2f}" for v in perf["position"]),
            f"{perf['points']:,}",
        )
    return table


def _inspect_performers(pc: Any, model: str | None, plot: Path | None) -> list[dict[str, Any]]:
    """Performers of a scene, classified when a model is given; drawn when asked."""
    from pcsep_cli.scene import find_performers

    performers = find_performers(pc)
    labels: list[tuple[str, float]] | None = None
    if model is not None:
        from pcsep_cli.separate.separator import Separator

        labels = Separator.from_pretrained(model, device="cpu").classify(performers)
    if plot is not None:
        from pcsep_cli.plot import plot_scene

        plot_scene(pc, performers, labels, plot)
    return [
        {
            "instrument": None if labels is None else labels[i][0],
            "confidence": None if labels is None else round(labels[i][1], 4),
            "position": [round(float(v), 4) for v in p.position],
            "points": len(p.points),
        }
        for i, p in enumerate(performers)
    ]
