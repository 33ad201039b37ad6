"""The Typer app and what every command shares: error handling, consoles, options, the bar.

Heavy modules (torch, the readers) are imported inside the commands so ``pcsep --help``
answers at once. Library errors (:class:`pcsep_cli.errors.PcsepError`) are caught once, in
:class:`_App`, and shown as one line on stderr with exit code 1; ``--debug`` adds the
traceback. Usage errors are one line too, with exit code 2 (click's convention). The commands
live in their own modules and are registered, in the order ``pcsep --help`` lists them, by
:mod:`pcsep_cli.cli`, each with ``cls=Command`` (groups ``cls=Group``): their help shows plain
metavars (``AUDIO``, ``[CLOUD]...``, ``--out DIR``, ``--overwrite``) instead of Typer's type
names (``{audio}``, ``<list[Path]>``, ``<bool>``).
"""

from __future__ import annotations

import os
import sys
import unicodedata
from typing import TYPE_CHECKING, Annotated, Any, Literal

import click
import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from pcsep_cli import __version__
from pcsep_cli.io.encoding import WRITE_FORMATS
from pcsep_cli.progress import Progress, ProgressFn

if TYPE_CHECKING:  # pragma: no cover
    from pcsep_cli.separate.separator import Separator

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Metavars for Typer's type names (what `<int range>` and the like become in help).
_METAVARS = {"int": "N", "float": "X", "str": "TEXT", "path": "PATH"}


class _PlainArgument(TyperArgument):
    """An argument shown the way click shows one: ``AUDIO``, ``[CLOUD]...``, no type name."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if not self.required:
            name = f"[{name}]"
        return name + ("..." if self.nargs != 1 and not name.endswith("...") else "")


class _PlainOption(TyperOption):
    """An option whose help shows a plain metavar (``DIR``, ``N``, ``m|cm|mm|ft``); a flag
    shows none. Bounds (``[0.5<=x<=600.0]``) are said in the help text where they matter:
    beside the metavar they squeeze the help column until long words are cut."""

    def _get_number_range_help_str(self) -> str | None:
        return None

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return self.metavar
        label = self.display_type(ctx).strip("<>").removesuffix(" range")
        return label if "|" in label else _METAVARS.get(label, label.upper())


class _PlainHelp:
    """Mixin for commands and groups: their parameters render with plain metavars.

    Typer builds every parameter as a ``TyperArgument`` or ``TyperOption`` (``--help``
    included, made when first asked for) and has no hook for their help classes, so each
    is given the subclass above, which changes how it is shown and nothing else.
    """

    def get_params(self, ctx: click.Context) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if type(param) is TyperArgument:
                param.__class__ = _PlainArgument
            elif type(param) is TyperOption:
                param.__class__ = _PlainOption
        return params


class Command(_PlainHelp, TyperCommand):
    """The class of every ``pcsep`` command (``app.command(cls=Command)``)."""


class Group(_PlainHelp, TyperGroup):
    """The class of every ``pcsep`` command group (``typer.Typer(cls=Group)``)."""


class _App(Group):
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
            # Typer validates values with pydantic, whose messages start "Value error, ".
            message = err.format_message().replace("Value error, ", "").rstrip(".")
            stderr_console().print(
                f"[bold red]error:[/] {safe_text(where)}: {safe_text(message)} "
                f"(see '{safe_text(where)} --help')",
                soft_wrap=True,
            )
            sys.exit(EXIT_USAGE)
        except cx.ClickException as err:
            stderr_console().print(f"[bold red]error:[/] {safe_text(err.format_message())}")
            sys.exit(err.exit_code)
        except typer.Abort:
            stderr_console().print("[yellow]aborted[/]")
            sys.exit(EXIT_FAILED)
        sys.exit(code if isinstance(code, int) else EXIT_OK)

    def invoke(self, ctx: click.Context) -> Any:
        from pcsep_cli.errors import PcsepError

        try:
            return super().invoke(ctx)
        except PcsepError as err:
            if is_debug(ctx):
                import traceback

                traceback.print_exc()
            stderr_console().print(f"[bold red]error:[/] {safe_text(str(err))}", soft_wrap=True)
            raise typer.Exit(EXIT_FAILED) from None
        except KeyboardInterrupt:
            stderr_console().print("[yellow]interrupted[/]: stopped cleanly, finished outputs kept")
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


def is_debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.obj and root.obj.get("debug"))


# Characters that a terminal acts on instead of showing, beyond the Cc category (C0 with ESC,
# DEL, C1): bidirectional overrides and isolates, which reorder what follows them ("Trojan
# Source"), and the Unicode line and paragraph separators.
_ACTIVE = frozenset("\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e")
_ACTIVE |= frozenset("\u2066\u2067\u2068\u2069")


def _shown(char: str) -> str:
    if char in _ACTIVE or unicodedata.category(char) in ("Cc", "Cs"):
        return repr(char)[1:-1]  # \x1b, \r, \x07, \x85, \u202e, \udcff (undecodable byte)
    return char


def safe_text(text: object) -> str:
    """Untrusted text ready for a rich console: a path, a name, a class name or a message
    that came from a file, a folder or a model.

    Control characters (ESC, CR, BEL, NUL, C1 ...), bidirectional overrides and lone
    surrogates are shown as their escapes (``\x1b``), so a file name cannot move the cursor,
    recolour, clear or retitle the terminal; rich markup (``[red]``) is escaped, so it is
    shown as written. Everything the CLI prints from outside goes through here.
    """
    from rich.markup import escape

    text = str(text)
    if not text.isprintable():  # fast path: plain text has nothing to replace
        text = "".join(_shown(c) for c in text)
    return escape(text)


def shown_path(path: str | os.PathLike[str]) -> str:
    """A path ready to print: relative to the working folder when it lies inside it (as
    the user would type it), absolute otherwise; through :func:`safe_text`."""
    full, here = os.path.abspath(path), os.getcwd()
    try:
        inside = os.path.commonpath([full, here]) == here
    except ValueError:  # another drive (Windows)
        inside = False
    return safe_text(os.path.relpath(full, here) if inside else full)


def stderr_console():  # noqa: ANN202 - rich is imported lazily
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def stdout_console():  # noqa: ANN202
    from rich.console import Console

    return Console(highlight=False)


def print_warnings(warnings: list[str]) -> None:
    """The library's warnings, one line each on stderr (stdout stays for results and JSON)."""
    console = stderr_console()
    for line in warnings:
        console.print(f"[yellow]warning:[/] {safe_text(line)}", soft_wrap=True)


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


UNITS_HELP = (
    "Units of the cloud's coordinates when they are not metres (a cloud in millimetres: mm)."
)
# Rich markup would take "[@revision]" for a tag and drop it: the bracket is escaped.
MODEL_REF_HELP = "Bundled name (pcsep-base), model folder, or Hub id owner/name\\[@revision]."
OFFLINE_HELP = "Never contact the Hub; use cached models only (like HF_HUB_OFFLINE=1)."
SEP_PANEL = "Output"


def _check_device(value: str) -> str:
    """``--device``: a device this machine has, checked while the command line is parsed,
    so a missing GPU is a usage error before anything is read or loaded (torch is imported
    only for ``cuda`` and ``mps``)."""
    if value in ("cuda", "mps"):
        from pcsep_cli.errors import ModelError
        from pcsep_cli.separate.separator import resolve_device

        try:
            resolve_device(value)
        except ModelError as err:
            raise typer.BadParameter(f"{err.message}; use --device cpu or auto") from None
    return value


# Options that `separate` and `batch` share: declared once so their names, bounds and help
# cannot drift apart.
ModelOpt = Annotated[
    str | None, typer.Option(metavar="REF", help=MODEL_REF_HELP + " Default: yours.")
]
DeviceOpt = Annotated[
    Literal["auto", "cpu", "cuda", "mps"],
    typer.Option(callback=_check_device, help="Where the model runs."),
]
OfflineOpt = Annotated[bool, typer.Option("--offline", help=OFFLINE_HELP)]
UnitsOpt = Annotated[
    Literal["m", "cm", "mm", "ft"] | None,
    typer.Option(case_sensitive=False, help=UNITS_HELP),
]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        metavar="|".join(WRITE_FORMATS),
        help="wav or flac (lossless), or mp3, ogg (Vorbis) or opus (lossy: stems + residual "
        "then only approximate the mixture).",
        rich_help_panel=SEP_PANEL,
    ),
]
BitsOpt = Annotated[
    str | None,
    typer.Option(
        metavar="16|24|32f",
        help="16, 24 or 32f (wav), 16 or 24 (flac). Default: the input's.",
        rich_help_panel=SEP_PANEL,
    ),
]
BitrateOpt = Annotated[
    int | None,
    typer.Option(
        help="kbit/s of mp3 (constant; 32-320 at 32-48 kHz, default 320) or opus (6-256 per "
        "channel, default 64 per channel).",
        rich_help_panel=SEP_PANEL,
    ),
]
QualityOpt = Annotated[
    float | None,
    typer.Option(help="Vorbis quality of ogg, 0 to 10 (default 6).", rich_help_panel=SEP_PANEL),
]
StemsOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAMES",
        help="Write only these instruments (violin,cello): every performer of each. The rest "
        "goes to the residual.",
        rich_help_panel=SEP_PANEL,
    ),
]
StartOpt = Annotated[
    str | None,
    typer.Option(help="Separate from this time on: seconds (90.5), mm:ss or hh:mm:ss."),
]
DurationOpt = Annotated[
    str | None,
    typer.Option(help="Separate this long (seconds, mm:ss or hh:mm:ss). Default: to the end."),
]
ClipModeOpt = Annotated[
    str,
    typer.Option(
        metavar="rescale|clamp|none",
        help="rescale (a stem peaking past full scale is scaled down), clamp or none.",
        rich_help_panel=SEP_PANEL,
    ),
]
SegmentOpt = Annotated[
    float,
    typer.Option(
        min=0.5, max=600.0, metavar="SECONDS", help="Chunk length in seconds (0.5 to 600)."
    ),
]
OverlapOpt = Annotated[
    float,
    typer.Option(
        min=0.0,
        max=0.5,
        metavar="FRACTION",
        help="Fraction of a chunk shared with the next (0 to 0.5).",
    ),
]
NoResidualOpt = Annotated[
    bool,
    typer.Option(
        "--no-residual", help="Do not write the residual file.", rich_help_panel=SEP_PANEL
    ),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace existing outputs.", rich_help_panel=SEP_PANEL),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress on stderr (errors and results are still shown)."
    ),
]


class ProgressBar:
    """A rich progress bar fed by the library's :class:`~pcsep_cli.progress.Progress` events."""

    def __init__(self, description: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=stderr_console(),
            transient=True,
        )
        self._task = self._progress.add_task(description, total=None)

    def __enter__(self) -> ProgressBar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def __call__(self, event: Progress) -> None:
        self._progress.update(self._task, completed=event.done, total=event.total)


def load_separator(
    model: str | None,
    device: str,
    offline: bool,
    segment: float,
    overlap: float,
    progress: ProgressFn,
) -> Separator:
    """Load the model for ``separate`` and ``batch``, reported as stage ``load`` (its name)."""
    progress(Progress("load", 0, None, "", model or "the default model"))
    from pcsep_cli.separate.separator import Separator  # torch: after the stage is shown

    return Separator.from_pretrained(
        model, device=device, offline=offline or None, segment=segment, overlap=overlap
    )


def go_offline(offline: bool) -> None:
    # Before huggingface_hub is imported: it reads HF_HUB_OFFLINE once, at import.
    if offline:
        from pcsep_cli.hub.download import set_offline

        set_offline()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``argv``: the arguments, default ``sys.argv[1:]``)."""
    app(args=argv, prog_name="pcsep")
