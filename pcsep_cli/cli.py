"""The ``pcsep`` command line: parse, call the library, render with rich. Nothing else.

Heavy modules (torch, the readers) are imported inside the commands so ``pcsep --help``
answers at once. Library errors (:class:`pcsep_cli.errors.PcsepError`) are caught once, in
:class:`_App`, and shown as one line on stderr with exit code 1; ``--debug`` adds the
traceback. Usage errors exit with 2 (click's convention).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from pcsep_cli import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _App(TyperGroup):
    """Click group that turns library errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from pcsep_cli.errors import PcsepError

        try:
            return super().invoke(ctx)
        except PcsepError as err:
            if _debug(ctx):
                import traceback

                traceback.print_exc()
            _err_console().print(f"[bold red]error:[/] {_escape(str(err))}", soft_wrap=True)
            raise typer.Exit(EXIT_FAILED) from None
        except KeyboardInterrupt:
            _err_console().print("[yellow]interrupted[/]: stopped cleanly, finished outputs kept")
            raise typer.Exit(EXIT_INTERRUPTED) from None


app = typer.Typer(
    name="pcsep",
    cls=_App,
    help="Separate a music recording into one stem per instrument seen in a 3D point cloud.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.obj and root.obj.get("debug"))


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _err_console():  # noqa: ANN202 - rich is imported lazily
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _console():  # noqa: ANN202
    from rich.console import Console

    return Console(highlight=False)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"pcsep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Separate a music recording into one stem per instrument seen in a 3D point cloud."""
    ctx.obj = {"debug": debug}


UNITS_HELP = "Units of the cloud's coordinates when they are not metres: mm, cm, m or ft."


@app.command()
def inspect(
    cloud: Annotated[Path, typer.Argument(help="Point cloud: PLY, LAS, LAZ or PCD.")],
    units: Annotated[str | None, typer.Option(help=UNITS_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Report a point cloud's format, size, bounds and colours."""
    from pcsep_cli.io.pointcloud import read_cloud

    pc = read_cloud(cloud, units=units)
    report: dict[str, Any] = {
        "file": str(cloud),
        "format": pc.format,
        "points": pc.num_points,
        "bounds": {"min": pc.bounds[0].tolist(), "max": pc.bounds[1].tolist()},
        "has_rgb": pc.rgb is not None,
    }
    if as_json:
        typer.echo(json.dumps(report))
        return
    from rich.table import Table

    table = Table(title=str(cloud), show_header=False, title_justify="left")
    table.add_row("format", pc.format)
    table.add_row("points", f"{pc.num_points:,}")
    if pc.dropped:
        table.add_row("dropped", f"{pc.dropped:,} non-finite points")
    lo, hi = pc.bounds
    table.add_row("bounds min", "  ".join(f"{v:.3f}" for v in lo))
    table.add_row("bounds max", "  ".join(f"{v:.3f}" for v in hi))
    table.add_row("extent (m)", "  ".join(f"{v:.3f}" for v in hi - lo))
    table.add_row("colour", "yes" if pc.rgb is not None else "no")
    table.add_row("intensity", "yes" if pc.intensity is not None else "no")
    _console().print(table)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="pcsep")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
