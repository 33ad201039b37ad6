"""``pcsep models``: list, download, describe, choose, remove, blend, calibrate and publish
models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pcsep_cli.cli.app import (
    MODEL_REF_HELP,
    Command,
    Group,
    OfflineOpt,
    go_offline,
    safe_text,
    stderr_console,
    stdout_console,
)

models_app = typer.Typer(
    cls=Group,
    help="List, download, describe, choose, remove, blend, calibrate and publish models.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _size(num: int | None) -> str:
    if num is None:
        return "-"
    value = float(num)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover


@models_app.command("list", cls=Command)
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List bundled and downloaded models; the default is marked with *."""
    from pcsep_cli.hub.catalog import list_models

    report = list_models()
    if as_json:
        typer.echo(json.dumps(report))
        return
    from rich.table import Table

    console = stdout_console()
    # The Hub cache's path on a line of its own, whole (a table's title broke it mid-name to
    # the table's width); the table has no title, which rich would pad to that width.
    console.print(f"Hub cache: {safe_text(report['cache_dir'])}", soft_wrap=True)
    table = Table()
    for column in ("", "model", "source", "size"):
        table.add_column(column, no_wrap=True)  # names and sizes whole; revisions wrap
    table.add_column("revisions")
    for model in report["models"]:
        revisions = ", ".join(
            f"{r['commit'][:10]} ({', '.join(r['refs']) or 'no ref'})"
            + ("" if r["complete"] else " partial")
            for r in model["revisions"]
        )
        if model.get("available") is False:
            revisions = "not available: run `pcsep models download`"
        mark = "*" if model["default"] else ""
        table.add_row(
            mark,
            safe_text(model["ref"]),
            safe_text(model["source"]),
            _size(model["size_bytes"]),
            safe_text(revisions),
        )
    console.print(table)
    console.print(
        f"default: {safe_text(report['default'])} (from {safe_text(report['default_origin'])})",
        soft_wrap=True,
    )


@models_app.command("download", cls=Command)
def models_download(
    ref: Annotated[str, typer.Argument(metavar="REF", help=MODEL_REF_HELP)],
    force: Annotated[bool, typer.Option(help="Download again even when cached.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Download a Hub model into the cache (and check it) so it works offline."""
    from pcsep_cli.hub.models import download

    with stderr_console().status(f"fetching {safe_text(ref)}"):
        resolved = download(ref, force=force)
    if as_json:
        typer.echo(json.dumps(resolved.describe()))
        return
    name = f"{resolved.repo_id}@{resolved.revision} = {resolved.commit}" if resolved.commit else ref
    stdout_console().print(f"{safe_text(name)}: ready in {safe_text(str(resolved.path))}")


@models_app.command("info", cls=Command)
def models_info(
    ref: Annotated[
        str | None, typer.Argument(metavar="REF", help=MODEL_REF_HELP + " Default: yours.")
    ] = None,
    offline: OfflineOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a model's origin, classes, sample rate, size and its card's evaluation table."""
    go_offline(offline)
    from pcsep_cli.hub.catalog import model_info

    info = model_info(ref, offline=offline or None)
    if as_json:
        typer.echo(json.dumps(info))
        return
    from rich.table import Table

    table = Table(title=safe_text(info["id"]), show_header=False, title_justify="left")
    table.add_row("source", safe_text(info["source"]))
    if info["commit"]:
        table.add_row("revision", safe_text(f"{info['revision']} = {info['commit']}"))
    table.add_row("path", safe_text(info["path"]))
    table.add_row("classes", safe_text(", ".join(info["classes"])))
    table.add_row("sample rate", f"{info['sample_rate']} Hz")
    table.add_row("conditioning", safe_text(info["conditioning"]))
    mics = "read (spatial head)" if info["microphones"] else "ignored (mono downmix)"
    table.add_row("microphones", mics)
    table.add_row("parameters", f"{info['parameters']:,} in {info['tensors']} tensors")
    table.add_row(
        "files", safe_text(", ".join(f"{n} {_size(s)}" for n, s in info["files"].items()))
    )
    console = stdout_console()
    console.print(table)
    evaluation = info["evaluation"]
    if evaluation:
        scores = Table(
            *map(safe_text, evaluation["columns"]), title="evaluation (card)", title_justify="left"
        )
        for row in evaluation["rows"]:
            scores.add_row(*map(safe_text, row + [""] * (len(evaluation["columns"]) - len(row))))
        console.print(scores)


@models_app.command("use", cls=Command)
def models_use(
    ref: Annotated[str, typer.Argument(metavar="REF", help=MODEL_REF_HELP)],
    offline: OfflineOpt = False,
) -> None:
    """Make REF the default model (downloaded and checked first). PCSEP_MODEL overrides it."""
    import os

    go_offline(offline)
    from pcsep_cli.hub.models import parse_ref, resolve, verify
    from pcsep_cli.hub.userconfig import save_default_model

    with stderr_console().status(f"checking {safe_text(ref)}"):
        verify(resolve(ref, offline=offline or None))
    saved = str(parse_ref(ref))
    path = save_default_model(saved)
    stdout_console().print(f"default model: {safe_text(saved)} (saved in {safe_text(str(path))})")
    if os.environ.get("PCSEP_MODEL"):
        stderr_console().print(
            f"[yellow]note[/]: PCSEP_MODEL={safe_text(os.environ['PCSEP_MODEL'])} is set and "
            "overrides it in this shell"
        )


@models_app.command("remove", cls=Command)
def models_remove(
    ref: Annotated[
        str,
        typer.Argument(metavar="REF", help="Hub id owner/name (all revisions) or owner/name@rev."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Delete a downloaded model from the Hub cache."""
    from pcsep_cli.hub.catalog import remove_model

    report = remove_model(ref)
    if as_json:
        typer.echo(json.dumps(report))
        return
    if report["kept_target"] is not None:
        stdout_console().print(
            f"removed {safe_text(ref)}: the cache held a link to "
            f"{safe_text(report['kept_target'])}, which is left as it was"
        )
    else:
        stdout_console().print(f"removed {safe_text(ref)}: {_size(report['freed_bytes'])} freed")
    if report["was_default"]:
        stderr_console().print(
            "[yellow]note[/]: it was the default model; choose another with `pcsep models use`"
        )


@models_app.command("blend", cls=Command)
def models_blend(
    base: Annotated[
        str, typer.Argument(metavar="BASE", help="The model fine-tuning started from.")
    ],
    tuned: Annotated[str, typer.Argument(metavar="TUNED", help="The fine-tuned model.")],
    weight: Annotated[
        float,
        typer.Option(
            "--weight", "-w", metavar="W", help="Share of TUNED, 0 to 1 (1: TUNED itself)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Model folder to write.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a model already in DIR.")
    ] = False,
) -> None:
    """Average a model and its fine-tuned copy: (1 - W)·BASE + W·TUNED.

    The blend keeps most of what fine-tuning gained and most of what it forgot.

    Choose W on validation data."""
    from pcsep_cli.hub.blend import blend

    try:
        result = blend(base, tuned, weight, out, overwrite=overwrite)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--weight") from None
    stdout_console().print(
        f"{safe_text(str(result.out))}: {1 - result.weight:g} × {safe_text(base)} + "
        f"{result.weight:g} × {safe_text(tuned)} ({result.tensors} tensors blended)",
        soft_wrap=True,
    )


@models_app.command("calibrate", cls=Command)
def models_calibrate(
    model: Annotated[str, typer.Argument(metavar="MODEL", help=MODEL_REF_HELP)],
    datasets: Annotated[
        list[Path],
        typer.Argument(
            metavar="DATASET...",
            help="Datasets (pcsep synth) whose validation scenes and cloud scenes to use; "
            "whole-room scans (--clutter) are what the threshold is for.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="DIR", help="Model folder to write.")],
    split: Annotated[
        str, typer.Option(metavar="SPLIT", help="Split to calibrate on (never test).")
    ] = "val",
    max_spurious: Annotated[
        float,
        typer.Option(
            metavar="R", help="Stems on no performer allowed per performer (0.01: one in 100)."
        ),
    ] = 0.01,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a model already in DIR.")
    ] = False,
) -> None:
    """Choose the confidence below which a cluster is none, and write MODEL with it.

    Runs the scene step and the classifier on the validation scenes as pcsep separate does,
    matches clusters to performers, and keeps the lowest threshold at which clusters of no
    performer (seats, stands, tables, walls) give at most R stems per performer."""
    from pcsep_cli.hub.blend import check_out
    from pcsep_cli.train.calibrate import calibrate, write_calibrated

    check_out(out, overwrite)
    try:
        result = calibrate(model, datasets, split=split, max_spurious=max_spurious)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    write_calibrated(model, result.threshold, out, overwrite=overwrite)
    con = stdout_console()
    con.print(
        f"{result.scenes} scenes, {result.performers} performers, {result.clusters} clusters",
        soft_wrap=True,
    )
    con.print("threshold  spurious/performer  named right")
    for t, spurious, detected in result.curve:
        mark = "  <- chosen" if t == result.threshold else ""
        con.print(f"{t:9.4f}  {spurious:18.3f}  {detected:11.3f}{mark}")
    con.print(
        f"{safe_text(str(out))}: none below {result.threshold:.4f} "
        f"(spurious {result.spurious[1]:.3f} -> {result.spurious[0]:.3f} per performer, "
        f"named right {result.detected[1]:.3f} -> {result.detected[0]:.3f})",
        soft_wrap=True,
    )


@models_app.command("push", cls=Command)
def models_push(
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="Model folder: config.json, model.safetensors, README.md."
        ),
    ],
    repo_id: Annotated[
        str, typer.Argument(metavar="REPO", help="Hub repository owner/name (created if new).")
    ],
    revision: Annotated[
        str,
        typer.Option(
            "--revision", metavar="BRANCH", help="Branch to commit to (created from main if new)."
        ),
    ] = "main",
    private: Annotated[
        bool, typer.Option("--private", help="Create the repository private.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            metavar="TOKEN",
            help="Hub token with write access. Default: HF_TOKEN, then `hf auth login`.",
        ),
    ] = None,
    message: Annotated[
        str | None, typer.Option("--message", "-m", metavar="TEXT", help="Commit message.")
    ] = None,
    evaluation: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            metavar="JSON",
            help="`pcsep evaluate --json` output: metrics for the card's model-index.",
        ),
    ] = None,
    datasets: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset", metavar="ID", help="Hub dataset id for the card (repeat for several)."
        ),
    ] = None,
    license_id: Annotated[
        str | None,
        typer.Option("--license", metavar="ID", help="License id for the card (e.g. apache-2.0)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and show the card; upload nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Publish a model folder to the Hub: checked like a download, with a model card."""
    from pcsep_cli.hub.publish import PushResult, prepare, upload

    try:
        plan = prepare(
            directory,
            repo_id,
            revision=revision,
            evaluation=evaluation,
            datasets=datasets or (),
            license=license_id,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    if dry_run:
        if as_json:
            result = PushResult(plan.repo_id, plan.revision, None, None, plan.sizes(), plan.skipped)
            typer.echo(json.dumps({**result.to_json(), "card": plan.card}))
            return
        console = stdout_console()
        for line in plan.card.splitlines():  # the card may come from anywhere: escaped
            console.print(safe_text(line), soft_wrap=True)
        stderr_console().print(
            f"dry run: {safe_text(str(plan.directory))} passes the checks; nothing uploaded"
        )
        return
    where = f"{plan.repo_id}@{plan.revision}"
    with stderr_console().status(f"pushing to {safe_text(where)}"):
        result = upload(plan, private=private, token=token, message=message)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    console = stdout_console()
    files = ", ".join(f"{n} {_size(s)}" for n, s in result.files.items())
    console.print(
        f"{safe_text(where)} = {safe_text(result.commit)}: {safe_text(files)}", soft_wrap=True
    )
    if result.url:
        console.print(safe_text(result.url), soft_wrap=True)
    for note in result.notes:
        stderr_console().print(f"[yellow]note[/]: {safe_text(note)}", soft_wrap=True)
    if plan.skipped:
        stderr_console().print(
            f"[yellow]note[/]: not uploaded: {safe_text(', '.join(plan.skipped))}", soft_wrap=True
        )
