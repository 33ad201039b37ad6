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

    table = Table(title=_escape(str(cloud)), show_header=False, title_justify="left")
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


models_app = typer.Typer(
    help="List, download, describe, choose and remove pretrained models.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(models_app, name="models")
MODEL_REF_HELP = "Bundled name (pcsep-base), model directory, or Hub id owner/name[@revision]."
OFFLINE_HELP = "Never contact the Hub; use cached models only (like HF_HUB_OFFLINE=1)."


def _go_offline(offline: bool) -> None:
    # Before huggingface_hub is imported: it reads HF_HUB_OFFLINE once, at import.
    if offline:
        from pcsep_cli.hub_download import set_offline

        set_offline()


def _size(num: int | None) -> str:
    if num is None:
        return "-"
    value = float(num)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover


@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List bundled and downloaded models; the default is marked with *."""
    from pcsep_cli.hub_catalog import list_models

    report = list_models()
    if as_json:
        typer.echo(json.dumps(report))
        return
    from rich.table import Table

    table = Table(title=f"models (cache: {_escape(report['cache_dir'])})", title_justify="left")
    for column in ("", "model", "source", "size", "revisions"):
        table.add_column(column)
    for model in report["models"]:
        revisions = ", ".join(
            f"{r['commit'][:10]} ({', '.join(r['refs']) or 'no ref'})"
            + ("" if r["complete"] else " partial")
            for r in model["revisions"]
        )
        if model.get("available") is False:
            revisions = "not available: run `pcsep models download`"
        mark = "*" if model["default"] else ""
        table.add_row(mark, model["ref"], model["source"], _size(model["size_bytes"]), revisions)
    _console().print(table)
    _console().print(f"default: {_escape(report['default'])} (from {report['default_origin']})")


@models_app.command("download")
def models_download(
    ref: Annotated[str, typer.Argument(help=MODEL_REF_HELP)],
    force: Annotated[bool, typer.Option(help="Download again even when cached.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Download a Hub model into the cache (and check it) so it works offline."""
    from pcsep_cli.hub import download

    with _err_console().status(f"fetching {_escape(ref)}"):
        resolved = download(ref, force=force)
    if as_json:
        typer.echo(json.dumps(resolved.describe()))
        return
    name = f"{resolved.repo_id}@{resolved.revision} = {resolved.commit}" if resolved.commit else ref
    _console().print(f"{_escape(name)}: ready in {_escape(str(resolved.path))}")


@models_app.command("info")
def models_info(
    ref: Annotated[str | None, typer.Argument(help=MODEL_REF_HELP + " Default: yours.")] = None,
    offline: Annotated[bool, typer.Option("--offline", help=OFFLINE_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a model's origin, classes, sample rate, size and its card's evaluation table."""
    _go_offline(offline)
    from pcsep_cli.hub_catalog import model_info

    info = model_info(ref, offline=offline or None)
    if as_json:
        typer.echo(json.dumps(info))
        return
    from rich.table import Table

    table = Table(title=str(info["id"]), show_header=False, title_justify="left")
    table.add_row("source", info["source"])
    if info["commit"]:
        table.add_row("revision", f"{info['revision']} = {info['commit']}")
    table.add_row("path", info["path"])
    table.add_row("classes", ", ".join(info["classes"]))
    table.add_row("sample rate", f"{info['sample_rate']} Hz")
    table.add_row("conditioning", str(info["conditioning"]))
    table.add_row("parameters", f"{info['parameters']:,} in {info['tensors']} tensors")
    table.add_row("files", ", ".join(f"{n} {_size(s)}" for n, s in info["files"].items()))
    console = _console()
    console.print(table)
    evaluation = info["evaluation"]
    if evaluation:
        scores = Table(*evaluation["columns"], title="evaluation (card)", title_justify="left")
        for row in evaluation["rows"]:
            scores.add_row(*(row + [""] * (len(evaluation["columns"]) - len(row))))
        console.print(scores)


@models_app.command("use")
def models_use(
    ref: Annotated[str, typer.Argument(help=MODEL_REF_HELP)],
    offline: Annotated[bool, typer.Option("--offline", help=OFFLINE_HELP)] = False,
) -> None:
    """Make REF the default model (downloaded and checked first). PCSEP_MODEL overrides it."""
    import os

    _go_offline(offline)
    from pcsep_cli.hub import parse_ref, resolve, verify
    from pcsep_cli.userconfig import save_default_model

    with _err_console().status(f"checking {_escape(ref)}"):
        verify(resolve(ref, offline=offline or None))
    saved = str(parse_ref(ref))
    path = save_default_model(saved)
    _console().print(f"default model: {_escape(saved)} (saved in {_escape(str(path))})")
    if os.environ.get("PCSEP_MODEL"):
        _err_console().print(
            f"[yellow]note[/]: PCSEP_MODEL={_escape(os.environ['PCSEP_MODEL'])} is set and "
            "overrides it in this shell"
        )


@models_app.command("remove")
def models_remove(
    ref: Annotated[str, typer.Argument(help="Hub id owner/name (all revisions) or owner/name@rev")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Delete a downloaded model from the Hub cache."""
    from pcsep_cli.hub_catalog import remove_model

    report = remove_model(ref)
    if as_json:
        typer.echo(json.dumps(report))
        return
    _console().print(f"removed {_escape(ref)}: {_size(report['freed_bytes'])} freed")
    if report["was_default"]:
        _err_console().print(
            "[yellow]note[/]: it was the default model; choose another with `pcsep models use`"
        )


class _Bar:
    """A rich progress bar fed by the library's ``progress(done, total)`` callbacks."""

    def __init__(self, description: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=_err_console(),
            transient=True,
        )
        self._task = self._progress.add_task(description, total=None)

    def __enter__(self) -> _Bar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def __call__(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder (created).")],
    examples: Annotated[int, typer.Option(min=0, help="Whole scenes, over all splits.")] = 100,
    seed: Annotated[int, typer.Option(help="Everything follows from it.")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")] = 1,
    solo_pool: Annotated[
        int, typer.Option(min=0, help="Solo clips (one performer each) for training.")
    ] = 0,
    min_performers: Annotated[int, typer.Option(min=1, max=5)] = 1,
    max_performers: Annotated[int, typer.Option(min=1, max=5)] = 5,
    distractor_prob: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.5,
    duration: Annotated[float, typer.Option(min=0.5, help="Seconds of audio per scene.")] = 8.0,
    sample_rate: Annotated[int, typer.Option(help="Rate of the rendered audio (Hz).")] = 22050,
    mics: Annotated[str, typer.Option(help="mono, stereo, or a channel count up to 8.")] = (
        "stereo"
    ),
    bits: Annotated[str, typer.Option(help="32f (exact sums) or 24.")] = "32f",
    cycle_instruments: Annotated[
        bool, typer.Option(help="Cycle through the classes so a few scenes hold them all.")
    ] = False,
) -> None:
    """Write a synthetic dataset (scenes, mixtures, stems, solo pool) in the dataset layout."""
    from pcsep_cli.synth.dataset import write_dataset

    if min_performers > max_performers:
        raise typer.BadParameter("--min-performers is above --max-performers")
    mic_arg: str | int = int(mics) if mics.isdigit() else mics
    with _Bar("synth") as bar:
        try:
            summary = write_dataset(
                out,
                examples=examples,
                seed=seed,
                jobs=jobs,
                performers=(min_performers, max_performers),
                distractor_prob=distractor_prob,
                duration_s=duration,
                sample_rate=sample_rate,
                mics=mic_arg,
                solo_pool=solo_pool,
                bits=bits,
                cycle_instruments=cycle_instruments,
                progress=bar,
            )
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    _console().print(
        f"{summary.root}: {summary.written} scenes written, {summary.skipped} already there; "
        f"{summary.pool_written} solo clips written, {summary.pool_skipped} already there "
        f"({summary.seconds:.1f} s)",
        soft_wrap=True,
    )


def main() -> None:
    """Console-script entry point."""
    app(prog_name="pcsep")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
