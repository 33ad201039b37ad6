"""The ``pcsep`` command line: parse, call the library, render with rich. Nothing else.

Heavy modules (torch, the readers) are imported inside the commands so ``pcsep --help``
answers at once. Library errors (:class:`pcsep_cli.errors.PcsepError`) are caught once, in
:class:`_App`, and shown as one line on stderr with exit code 1; ``--debug`` adds the
traceback. Usage errors are one line too, with exit code 2 (click's convention).
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
    """Click group that turns library errors and usage errors into one line and an exit code."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        from typer._click import exceptions as cx

        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except cx.NoArgsIsHelpError as err:
            err.show()  # the help text, as click prints it
            sys.exit(EXIT_USAGE)
        except cx.UsageError as err:
            # One line, like every other error: what is wrong, where to read more.
            where = err.ctx.command_path if err.ctx is not None else "pcsep"
            message = err.format_message().rstrip(".")
            _err_console().print(
                f"[bold red]error:[/] {_escape(where)}: {_escape(message)} "
                f"(see '{_escape(where)} --help')",
                soft_wrap=True,
            )
            sys.exit(EXIT_USAGE)
        except cx.ClickException as err:
            _err_console().print(f"[bold red]error:[/] {_escape(err.format_message())}")
            sys.exit(err.exit_code)
        except typer.Abort:
            _err_console().print("[yellow]aborted[/]")
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)

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
MODEL_REF_HELP = "Bundled name (pcsep-base), model directory, or Hub id owner/name[@revision]."
OFFLINE_HELP = "Never contact the Hub; use cached models only (like HF_HUB_OFFLINE=1)."
SEP_PANEL = "Output"

# Options that `separate` and `batch` share: declared once so their names, bounds and help
# cannot drift apart.
ModelOpt = Annotated[str | None, typer.Option(help=MODEL_REF_HELP + " Default: yours.")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")]
OfflineOpt = Annotated[bool, typer.Option("--offline", help=OFFLINE_HELP)]
UnitsOpt = Annotated[str | None, typer.Option(help=UNITS_HELP)]
FormatOpt = Annotated[str, typer.Option("--format", help="wav or flac.", rich_help_panel=SEP_PANEL)]
BitsOpt = Annotated[
    str | None,
    typer.Option(help="16, 24 or 32f. Default: the input's.", rich_help_panel=SEP_PANEL),
]
ClipModeOpt = Annotated[
    str,
    typer.Option(
        help="rescale (a stem peaking past full scale is scaled down), clamp or none.",
        rich_help_panel=SEP_PANEL,
    ),
]
SegmentOpt = Annotated[float, typer.Option(min=0.5, max=600.0, help="Chunk length in seconds.")]
OverlapOpt = Annotated[
    float, typer.Option(min=0.0, max=0.5, help="Fraction of a chunk shared with the next.")
]
NoResidualOpt = Annotated[
    bool,
    typer.Option("--no-residual", help="Do not write residual.wav.", rich_help_panel=SEP_PANEL),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace existing outputs.", rich_help_panel=SEP_PANEL),
]


@app.command()
def inspect(
    cloud: Annotated[Path, typer.Argument(help="Point cloud: PLY, LAS, LAZ or PCD.")],
    units: UnitsOpt = None,
    model: Annotated[
        str | None,
        typer.Option(help="Find the performers and classify them with this model."),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write a PNG: top and sensor views, performers boxed and labelled."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Report a point cloud's format, size, bounds and colours (and performers with --model)."""
    from pcsep_cli.io.pointcloud import read_cloud

    if plot is not None and plot.suffix.lower() != ".png":
        raise typer.BadParameter(f"--plot must name a .png file, got {plot}")
    pc = read_cloud(cloud, units=units)
    report: dict[str, Any] = {
        "file": str(cloud),
        "format": pc.format,
        "points": pc.num_points,
        "bounds": {"min": pc.bounds[0].tolist(), "max": pc.bounds[1].tolist()},
        "has_rgb": pc.rgb is not None,
    }
    if model is not None or plot is not None:
        report["performers"] = _inspect_performers(pc, model, plot)
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
    for i, perf in enumerate(report.get("performers", []), 1):
        what = perf["instrument"] or "?"
        if perf["confidence"] is not None:
            what += f" ({100 * perf['confidence']:.0f}%)"
        pos = "  ".join(f"{v:.2f}" for v in perf["position"])
        table.add_row(f"performer {i}", f"{what} at {pos}, {perf['points']:,} points")
    _console().print(table)
    if plot is not None:
        _console().print(f"plot: {_escape(str(plot))}")


def _inspect_performers(pc: Any, model: str | None, plot: Path | None) -> list[dict[str, Any]]:
    """Performers of a scene, classified when a model is given; drawn when asked."""
    from pcsep_cli.scene import find_performers

    performers = find_performers(pc)
    labels: list[tuple[str, float]] | None = None
    if model is not None:
        from pcsep_cli.separate import Separator

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


models_app = typer.Typer(
    help="List, download, describe, choose and remove pretrained models.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(models_app, name="models")


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
    offline: OfflineOpt = False,
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
    offline: OfflineOpt = False,
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
    cloud_scenes: Annotated[
        int, typer.Option(min=0, help="Scanned scenes without sound, for the classifier.")
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
    splits: Annotated[
        str, typer.Option(help="Train,val,test shares (normalised), e.g. 0.7,0.1,0.2.")
    ] = "0.8,0.1,0.1",
) -> None:
    """Write a synthetic dataset (scenes, mixtures, stems, solo pool) in the dataset layout."""
    from pcsep_cli.synth.dataset import write_dataset

    if min_performers > max_performers:
        raise typer.BadParameter("--min-performers is above --max-performers")
    bad_splits = f"--splits takes three numbers, e.g. 0.7,0.1,0.2; got {splits!r}"
    try:
        fractions = tuple(float(x) for x in splits.split(","))
    except ValueError:
        raise typer.BadParameter(bad_splits) from None
    if len(fractions) != 3:
        raise typer.BadParameter(bad_splits)
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
                cloud_scenes=cloud_scenes,
                bits=bits,
                cycle_instruments=cycle_instruments,
                split_fractions=fractions,
                progress=bar,
            )
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    _console().print(
        f"{summary.root}: {summary.written} scenes written, {summary.skipped} already there; "
        f"{summary.pool_written} solo clips written, {summary.pool_skipped} already there; "
        f"{summary.clouds_written} cloud scenes written, {summary.clouds_skipped} already there "
        f"({summary.seconds:.1f} s)",
        soft_wrap=True,
    )


@app.command()
def separate(
    audio: Annotated[Path, typer.Argument(help="The recording: WAV, FLAC, OGG, AIFF ...")],
    clouds: Annotated[
        list[Path] | None,
        typer.Argument(
            help="The scene's point cloud, or one cloud per performer (no clustering then). "
            "Optional with --instruments."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("separated"),
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    instruments: Annotated[
        str | None,
        typer.Option(
            help="Label mode: one instrument per performer, left to right (violin,cello); "
            "skips classification. Without CLOUD the net is conditioned on the labels alone."
        ),
    ] = None,
    fmt: FormatOpt = "wav",
    bits: BitsOpt = None,
    filename: Annotated[
        str,
        typer.Option(
            help="Output path inside -o; fields {track} {stem} {instrument} {ext}.",
            rich_help_panel=SEP_PANEL,
        ),
    ] = "{track}/{stem}.{ext}",
    clip_mode: ClipModeOpt = "rescale",
    segment: SegmentOpt = 20.0,
    overlap: OverlapOpt = 0.1,
    no_residual: NoResidualOpt = False,
    overwrite: OverwriteOpt = False,
    units: UnitsOpt = None,
    offline: OfflineOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest.")] = False,
) -> None:
    """Write one audio file per instrument seen in the scene, a residual and manifest.json."""
    if device not in ("auto", "cpu", "cuda", "mps"):
        raise typer.BadParameter(f"--device must be auto, cpu, cuda or mps, got {device!r}")
    labels = None
    if instruments is not None:
        labels = tuple(i.strip() for i in instruments.split(",") if i.strip())
        if not labels:
            raise typer.BadParameter("--instruments needs at least one name")
    _go_offline(offline)
    from pcsep_cli.separate_job import SeparateOptions, prepare_job

    try:
        options = SeparateOptions(
            format=fmt.lower(),
            bits=bits,
            filename=filename,
            clip_mode=clip_mode,
            residual=not no_residual,
            overwrite=overwrite,
            instruments=labels,
            units=units,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    # Everything that can fail without a model fails here, before the model loads.
    job = prepare_job(audio, clouds or [], out, options)
    from pcsep_cli.separate import Separator

    with _err_console().status("loading the model"):
        separator = Separator.from_pretrained(
            model, device=device, offline=offline or None, segment=segment, overlap=overlap
        )
    frames = job.info.frames
    with _Bar("separating") as bar:

        def progress(event: Any) -> None:
            bar(event.done + (frames if event.stage == "write" else 0), 2 * frames)

        manifest = separator.run(job, progress=progress)
    if as_json:
        typer.echo(json.dumps(manifest))
        return
    _print_manifest(manifest)


def _print_manifest(manifest: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=_escape(manifest["audio"]), title_justify="left")
    for column in ("stem", "instrument", "confidence", "position (m)", "file"):
        table.add_column(column)
    for stem in manifest["stems"]:
        pos = stem["position"]
        table.add_row(
            stem["name"],
            stem["instrument"],
            f"{100 * stem['confidence']:.0f}%",
            "-" if pos is None else "  ".join(f"{v:.2f}" for v in pos),
            _escape(stem["path"]),
        )
    if manifest["residual"]:
        table.add_row("residual", "", "", "", _escape(manifest["residual"]["path"]))
    console = _console()
    console.print(table)
    ignored = manifest["ignored"]
    if ignored:
        console.print(f"{len(ignored)} cluster(s) without an instrument (none) not separated")
    console.print(f"manifest: {_escape(manifest['manifest'])}")


BATCH_HELP = (
    "Separate every recording of a folder with the cloud beside it.\n\n"
    "Pairs [bold]NAME.wav[/] + [bold]NAME.ply[/] (.las/.laz/.pcd; any audio libsndfile reads), "
    "the dataset layout [bold]EXAMPLE/mixture.*[/] + [bold]scene.*[/] (also SPLIT/EXAMPLE/), "
    "or the rows of [bold]--manifest FILE.csv[/] (columns audio,cloud[,name]). "
    "Item NAME goes to OUT/NAME/.\n\n"
    "Finished items (their manifest.json lists stems that exist) are skipped; a failing item "
    "does not stop the others; exit status 1 when any failed."
)


@app.command(help=BATCH_HELP)
def batch(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Folder of recordings and clouds.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output root: item NAME goes to OUT/NAME/.")
    ] = Path("separated"),
    manifest: Annotated[
        Path | None,
        typer.Option(help="CSV with columns audio,cloud[,name] (paths from its folder)."),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="Items at once; they share one model.")
    ] = 1,
    shard: Annotated[
        str | None,
        typer.Option(
            help="K/N: run item i of the sorted list when i mod N = K (K in 0..N-1), "
            "e.g. --shard $SLURM_ARRAY_TASK_ID/8 or $JOB_COMPLETION_INDEX/8."
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Skip finished items. --no-resume redoes them (needs --overwrite).")
    ] = True,
    fail_fast: Annotated[bool, typer.Option(help="Stop at the first failing item.")] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Torch threads per item (default: all cores). Outputs are bitwise the same "
            "for any --jobs at a given --threads; with -j N try cores/N.",
        ),
    ] = None,
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    offline: OfflineOpt = False,
    fmt: FormatOpt = "wav",
    bits: BitsOpt = None,
    filename: Annotated[
        str,
        typer.Option(
            help="Output path inside -o; fields {track} (the item's NAME, required) {stem} "
            "{instrument} {ext}.",
            rich_help_panel=SEP_PANEL,
        ),
    ] = "{track}/{stem}.{ext}",
    clip_mode: ClipModeOpt = "rescale",
    segment: SegmentOpt = 20.0,
    overlap: OverlapOpt = 0.1,
    no_residual: NoResidualOpt = False,
    overwrite: OverwriteOpt = False,
    units: UnitsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    from pcsep_cli.batch import plan_batch, run_batch
    from pcsep_cli.batch_display import (
        BatchDisplay,
        print_failures,
        print_plan_notes,
        print_summary,
    )
    from pcsep_cli.batch_plan import parse_shard
    from pcsep_cli.batch_separator import SeparatorRunner
    from pcsep_cli.separate_job import SeparateOptions

    if device not in ("auto", "cpu", "cuda", "mps"):
        raise typer.BadParameter(f"--device must be auto, cpu, cuda or mps, got {device!r}")
    try:
        part = parse_shard(shard) if shard is not None else None
        options = SeparateOptions(
            format=fmt.lower(),
            bits=bits,
            filename=filename,
            clip_mode=clip_mode,
            residual=not no_residual,
            overwrite=overwrite,
            units=units,
        )
        plan = plan_batch(
            folder, out, manifest=manifest, part=part, resume=resume, filename=filename
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    err_console = _err_console()
    print_plan_notes(err_console, plan)
    separator = None
    if plan.todo:
        _go_offline(offline)
        import torch

        from pcsep_cli.separate import Separator

        if threads is not None:
            torch.set_num_threads(threads)
        with err_console.status(f"loading {_escape(model or 'the default model')}"):
            separator = Separator.from_pretrained(
                model, device=device, offline=offline or None, segment=segment, overlap=overlap
            )
    runner = SeparatorRunner(plan, options, lambda: separator)
    with BatchDisplay(err_console, plan) as display:
        summary = run_batch(plan, runner, jobs=jobs, fail_fast=fail_fast, observer=display)
    if as_json:
        typer.echo(json.dumps(summary.to_json()))
    else:
        print_summary(_console(), summary)
    print_failures(err_console, summary, debug=_debug(ctx))
    if not summary.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def train(
    config: Annotated[
        str, typer.Argument(help="Training config: a .json/.toml file or a preset name.")
    ],
    resume: Annotated[
        bool, typer.Option(help="Continue from the run's last checkpoint if there is one.")
    ] = True,
) -> None:
    """Train a separation model (mix-and-separate on a synthetic solo pool)."""
    import time

    from pcsep_cli.train.loop import TrainProgress
    from pcsep_cli.train.loop import train as run_training

    console = _err_console()

    def show(p: TrainProgress) -> None:
        if p.message or p.step % 50 == 0:
            line = f"{time.strftime('%H:%M:%S')} step {p.step}/{p.total} loss {p.loss:.4f}"
            line += f" {p.steps_per_s:.2f} it/s"
            if p.val_loss is not None:
                line += f" val {p.val_loss:.4f}"
            console.print(line + (f"  {_escape(p.message)}" if p.message else ""))

    out = run_training(config, resume=resume, progress=show)
    _console().print(f"model: {out}", soft_wrap=True)


@app.command()
def evaluate(
    model: Annotated[
        str, typer.Argument(help="Model: bundled name, folder or owner/name[@rev], as separate.")
    ],
    dataset: Annotated[Path, typer.Argument(help="A folder in the dataset layout.")],
    max_examples: Annotated[int | None, typer.Option(min=1, help="Score the first N.")] = None,
    max_seconds: Annotated[float, typer.Option(min=0.5, help="Seconds scored per example.")] = (
        10.0
    ),
    views: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Headings each cloud is encoded from, averaged [default: as separate].",
        ),
    ] = None,
    scene: Annotated[
        bool, typer.Option(help="Find the performers in the whole scene, as separate does.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score a model (SDR, SIR, SAR, SI-SDR) beside label, oracle-IRM and mixture baselines."""
    from pcsep_cli.nets.model import DEFAULT_VIEWS
    from pcsep_cli.train.evaluate import EvalProgress, markdown_tables
    from pcsep_cli.train.evaluate import evaluate as run_eval

    with _Bar("evaluate") as bar:

        def show(p: EvalProgress) -> None:
            bar(p.done, p.total)

        report = run_eval(
            model,
            dataset,
            max_examples=max_examples,
            max_seconds=max_seconds,
            views=views or DEFAULT_VIEWS,
            scene=scene,
            progress=show,
        )
    if as_json:
        typer.echo(json.dumps(report))
    else:
        _console().print(markdown_tables(report), soft_wrap=True, markup=False)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="pcsep")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
