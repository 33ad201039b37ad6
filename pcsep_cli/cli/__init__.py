"""The ``pcsep`` command line: parse, call the library, render with rich. Nothing else.

Modules: :mod:`~pcsep_cli.cli.app` (the Typer app, error handling, shared options, consoles,
the progress bar, ``main``), one module per command group (:mod:`~pcsep_cli.cli.inspect`,
:mod:`~pcsep_cli.cli.models`, :mod:`~pcsep_cli.cli.separate` with ``batch``,
:mod:`~pcsep_cli.cli.training` with ``synth``, ``synth-arrays``, ``train``,
``train-spatial``, ``evaluate``,
:mod:`~pcsep_cli.cli.doctor`) and
:mod:`~pcsep_cli.cli.display`, which draws ``pcsep batch``. Only this package imports rich.
The commands are registered here, in the order ``pcsep --help`` lists them.
"""

from __future__ import annotations

from pcsep_cli.cli import doctor, inspect, models, separate, training
from pcsep_cli.cli.app import Command, app, main

app.command(cls=Command, epilog=inspect.EXAMPLES)(inspect.inspect)
app.add_typer(models.models_app, name="models")
app.command(cls=Command)(training.synth)
app.command(cls=Command, name="synth-arrays")(training.synth_arrays)
app.command(cls=Command, epilog=separate.SEPARATE_EXAMPLES)(separate.separate)
app.command(cls=Command, help=separate.BATCH_HELP, epilog=separate.BATCH_EXAMPLES)(separate.batch)
app.command(cls=Command)(training.train)
app.command(cls=Command, name="train-spatial")(training.train_spatial)
app.command(cls=Command)(training.evaluate)
app.command(cls=Command, epilog=doctor.EXAMPLES)(doctor.doctor)

__all__ = ["app", "main"]
