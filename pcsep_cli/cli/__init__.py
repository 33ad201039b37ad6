"""The ``pcsep`` command line: parse, call the library, render with rich. Nothing else.

Modules: :mod:`~pcsep_cli.cli.app` (the Typer app, error handling, shared options, consoles,
the progress bar, ``main``), one module per command group (:mod:`~pcsep_cli.cli.inspect`,
:mod:`~pcsep_cli.cli.models`, :mod:`~pcsep_cli.cli.separate` with ``batch``,
:mod:`~pcsep_cli.cli.training` with ``synth``, ``train``, ``evaluate``) and
:mod:`~pcsep_cli.cli.display`, which draws ``pcsep batch``. Only this package imports rich.
The commands are registered here, in the order ``pcsep --help`` lists them.
"""

from __future__ import annotations

from pcsep_cli.cli import inspect, models, separate, training
from pcsep_cli.cli.app import app, main

app.command()(inspect.inspect)
app.add_typer(models.models_app, name="models")
app.command()(training.synth)
app.command()(separate.separate)
app.command(help=separate.BATCH_HELP)(separate.batch)
app.command()(training.train)
app.command()(training.evaluate)

__all__ = ["app", "main"]
