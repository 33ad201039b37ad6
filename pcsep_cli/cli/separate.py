"""``pcsep separate`` (one recording) and ``pcsep batch`` (a folder), with their tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pcsep_cli.cli.app import (
    EXIT_FAILED,
    SEP_PANEL,
    BitrateOpt,
    BitsOpt,
    ClipModeOpt,
    DeviceOpt,
    DurationOpt,
    FormatOpt,
    ModelOpt,
    NoResidualOpt,
    OfflineOpt,
    OverlapOpt,
    OverwriteOpt,
    QualityOpt,
    QuietOpt,
    SegmentOpt,
    StartOpt,
    StemsOpt,
    UnitsOpt,
    go_offline,
    is_debug,
    load_separator,
    print_warnings,
    safe_text,
    shown_path,
    stderr_console,
    stdout_console,
)


def _part_and_stems(stems: str | None, start: str | None, duration: str | None) -> dict[str, Any]:
    """``--stems``, ``--start`` and ``--duration`` as :class:`SeparateOptions` fields.

    Raises:
        ValueError: a time that cannot be read.
    """
    from pcsep_cli.separate.span import parse_time

    names = None
    if stems is not None:
        names = tuple(dict.fromkeys(s.strip() for s in stems.split(",") if s.strip()))
    return {
        "stems": names,
        "start": 0.0 if start is None else parse_time(start, "--start"),
        "duration": None if duration is None else parse_time(duration, "--duration"),
    }


def _note_ignored_mics(separator: Any) -> None:
    """One line on stderr when the model does not read the microphone geometry given."""
    from pcsep_cli.separate.geometry import ignored_note

    if not separator.uses_microphones:
        print_warnings([ignored_note(separator.model_info())])


def _check_stems(options: Any, separator: Any) -> None:
    """``--stems`` names the model does not know are a usage error, before any separation."""
    from pcsep_cli.separate.job import check_stems

    if options.stems is not None:
        try:
            check_stems(options.stems, separator.classes)
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None


def separate(
    audio: Annotated[Path, typer.Argument(help="The recording: WAV, FLAC, OGG, AIFF ...")],
    clouds: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="CLOUD...",
            help="The scene's point cloud, or one cloud per performer (no clustering then). "
            "Optional with --instruments.",
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Output folder (created).")
    ] = Path("separated"),
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    instruments: Annotated[
        str | None,
        typer.Option(
            metavar="NAMES",
            help="Label mode: one instrument per performer, left to right (violin,cello); "
            "skips classification. Without CLOUD the net is conditioned on the labels alone.",
        ),
    ] = None,
    mics: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Microphone geometry (mics.json): one microphone per channel, in channel "
            "order, in the cloud's frame and units. Recorded in the manifest.",
        ),
    ] = None,
    fmt: FormatOpt = "wav",
    bits: BitsOpt = None,
    bitrate: BitrateOpt = None,
    quality: QualityOpt = None,
    stems: StemsOpt = None,
    start: StartOpt = None,
    duration: DurationOpt = None,
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
    quiet: QuietOpt = False,
) -> None:
    """Write one audio file per instrument seen in the scene, a residual and manifest.json."""
    labels = None
    if instruments is not None:
        labels = tuple(i.strip() for i in instruments.split(",") if i.strip())
        if not labels:
            raise typer.BadParameter("--instruments needs at least one name")
    go_offline(offline)
    from pcsep_cli.cli.progress_view import ProgressView
    from pcsep_cli.separate.job import SeparateOptions, prepare_job

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
            bitrate=bitrate,
            quality=quality,
            **_part_and_stems(stems, start, duration),
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    with ProgressView.for_console(stderr_console(), quiet=quiet) as view:
        # Everything that can fail without a model fails here, before the model loads.
        job = prepare_job(audio, clouds or [], out, options, mics=mics, progress=view)
        print_warnings(job.warnings)
        separator = load_separator(model, device, offline, segment, overlap, view)
        _check_stems(options, separator)
        if job.microphones is not None:
            _note_ignored_mics(separator)
        from pcsep_cli.separate.output import run_job

        manifest = run_job(separator, job, progress=view)
        view.finish()
        print_warnings(manifest["notes"])
    if as_json:
        typer.echo(json.dumps(manifest))
        return
    _print_manifest(manifest)


SEPARATE_EXAMPLES = """[bold]Examples[/]
pcsep separate concert.wav scene.ply -o separated
pcsep separate take.flac violin.ply cello.ply     # one cloud per performer
pcsep separate take.wav --instruments violin,cello  # labels, no cloud
pcsep separate take.wav scan.las --units mm --device cuda
pcsep separate take.wav scene.ply --mics mics.json  # microphone positions"""


def _print_manifest(manifest: dict[str, Any]) -> None:
    """The stems as a table (no paths: a table cuts them to fit), then every output path whole
    on its own line, so it can be copied however narrow the terminal or the pipe."""
    from rich.table import Table

    console = stdout_console()
    folder = Path(manifest["manifest"]).parent  # the manifest's paths are relative to it
    console.print(shown_path(folder / manifest["audio"]), style="italic", soft_wrap=True)
    table = Table()
    table.add_column("stem", no_wrap=True)
    table.add_column("instrument", no_wrap=True)
    table.add_column("confidence", justify="right", no_wrap=True)
    for axis in "xyz":
        table.add_column(f"{axis} (m)", justify="right", no_wrap=True)
    for stem in manifest["stems"]:
        pos = stem["position"]
        table.add_row(
            safe_text(stem["name"]),
            safe_text(stem["instrument"]),
            f"{100 * stem['confidence']:.0f}%",
            *(["-"] * 3 if pos is None else [f"{v:.2f}" for v in pos]),
        )
    console.print(table)
    ignored = manifest["ignored"]
    if ignored:
        console.print(f"{len(ignored)} cluster(s) without an instrument (none) not separated")
    console.print("stems:")
    for stem in manifest["stems"]:
        console.print(f"  {shown_path(folder / stem['path'])}", soft_wrap=True)
    if manifest["residual"]:
        residual = shown_path(folder / manifest["residual"]["path"])
        console.print(f"residual: {residual}", soft_wrap=True)
    console.print(f"manifest: {shown_path(Path(manifest['manifest']))}", soft_wrap=True)


BATCH_HELP = (
    "Separate every recording of a folder with the cloud beside it.\n\n"
    "Pairs [bold]NAME.wav[/] + [bold]NAME.ply[/] (.las/.laz/.pcd/.e57; "
    "any audio libsndfile reads), "
    "the dataset layout [bold]EXAMPLE/mixture.*[/] + [bold]scene.*[/] (also SPLIT/EXAMPLE/), "
    "or the rows of [bold]--manifest FILE.csv[/] (columns audio,cloud[,name][,mics]). "
    "Item NAME goes to DIR/NAME/ (-o DIR).\n\n"
    "Microphone geometry (as separate --mics): [bold]NAME.mics.json[/] beside a recording, "
    "else the nearest [bold]mics.json[/] from the item's folder up to FOLDER.\n\n"
    "Finished items (their manifest.json lists stems that exist) are skipped; a failing item "
    "does not stop the others; exit status 1 when any failed."
)


BATCH_EXAMPLES = """[bold]Examples[/]
pcsep batch recordings/ -o separated --jobs 2
pcsep batch recordings/ --shard $SLURM_ARRAY_TASK_ID/8  # SLURM --array=0-7
pcsep batch recordings/ --shard $JOB_COMPLETION_INDEX/8  # Kubernetes
pcsep batch . --manifest takes.csv -o separated
pcsep batch recordings/ --no-resume --overwrite  # redo finished items"""


def batch(
    ctx: typer.Context,
    folder: Annotated[Path, typer.Argument(help="Folder of recordings and clouds.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", metavar="DIR", help="Output root: item NAME goes to DIR/NAME/."
        ),
    ] = Path("separated"),
    manifest: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="CSV with columns audio,cloud[,name][,mics] (paths from its folder).",
        ),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="Items at once; they share one model.")
    ] = 1,
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="K/N",
            help="Run item i of the sorted list when i mod N = K (K in 0..N-1): one of N "
            "machines (see the examples).",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Skip finished items. --no-resume redoes them (needs --overwrite).")
    ] = True,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failing item.")
    ] = False,
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
    bitrate: BitrateOpt = None,
    quality: QualityOpt = None,
    stems: StemsOpt = None,
    start: StartOpt = None,
    duration: DurationOpt = None,
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
    quiet: QuietOpt = False,
) -> None:
    from pcsep_cli.batch import plan_batch, run_batch
    from pcsep_cli.batch.plan import parse_shard
    from pcsep_cli.batch.runner import SeparatorRunner
    from pcsep_cli.cli.display import (
        BatchDisplay,
        print_failures,
        print_plan_notes,
        print_summary,
    )
    from pcsep_cli.separate.job import SeparateOptions, check_out_dir

    if not resume and not overwrite:  # or every finished item fails on its existing outputs
        raise typer.BadParameter(
            "it redoes finished items, whose outputs exist: add --overwrite to replace them",
            param_hint="'--no-resume'",
        )
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
            bitrate=bitrate,
            quality=quality,
            **_part_and_stems(stems, start, duration),
        )
        plan = plan_batch(
            folder, out, manifest=manifest, part=part, resume=resume, filename=filename
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    if plan.todo:
        check_out_dir(plan.out)  # once, before the model loads: every item would fail on it
    err_console = stderr_console()
    print_plan_notes(err_console, plan)
    separator = None
    with BatchDisplay(err_console, plan, quiet=quiet) as display:
        if plan.todo:
            go_offline(offline)
            separator = load_separator(model, device, offline, segment, overlap, display.view)
            if threads is not None:
                import torch

                torch.set_num_threads(threads)  # before the workers start: they inherit it
            _check_stems(options, separator)
            if any(item.mics is not None for item in plan.todo):
                _note_ignored_mics(separator)
        runner = SeparatorRunner(plan, options, lambda: separator)
        summary = run_batch(plan, runner, jobs=jobs, fail_fast=fail_fast, observer=display)
        display.finish()
    if as_json:
        typer.echo(json.dumps(summary.to_json()))
    else:
        print_summary(stdout_console(), summary)
        if plan.out.is_dir():
            stdout_console().print(f"outputs: {shown_path(plan.out)}", soft_wrap=True)
    print_failures(err_console, summary, debug=is_debug(ctx))
    if not summary.ok:
        raise typer.Exit(EXIT_FAILED)
