"""``pcsep synth``, ``pcsep train`` and ``pcsep evaluate``: data, training and scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pcsep_cli.cli.app import (
    ProgressBar,
    safe_text,
    stderr_console,
    stdout_console,
)
from pcsep_cli.progress import Progress


def _shares(option: str, text: str) -> tuple[float, float, float]:
    bad = f"{option} takes three numbers, e.g. 0.7,0.1,0.2; got {text!r}"
    try:
        shares = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(bad) from None
    if len(shares) != 3:
        raise typer.BadParameter(bad)
    return shares  # type: ignore[return-value]


def synth(
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Dataset folder (created).")
    ],
    examples: Annotated[int, typer.Option(min=0, help="Whole scenes, over all splits.")] = 100,
    seed: Annotated[int, typer.Option(help="Everything follows from it.")] = 0,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")] = 1,
    solo_pool: Annotated[
        int, typer.Option(min=0, help="Solo clips (one performer each) for training.")
    ] = 0,
    cloud_scenes: Annotated[
        int, typer.Option(min=0, help="Scanned scenes without sound, for the classifier.")
    ] = 0,
    min_performers: Annotated[
        int, typer.Option(min=1, max=5, help="Fewest performers in a scene (1 to 5).")
    ] = 1,
    max_performers: Annotated[
        int, typer.Option(min=1, max=5, help="Most performers in a scene (1 to 5).")
    ] = 5,
    distractor_prob: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, metavar="P", help="Chance that a scene holds distractors (0 to 1)."
        ),
    ] = 0.5,
    duration: Annotated[
        float,
        typer.Option(min=0.5, metavar="SECONDS", help="Seconds of audio per scene (0.5 or more)."),
    ] = 8.0,
    sample_rate: Annotated[
        int, typer.Option(metavar="HZ", help="Rate of the rendered audio (Hz).")
    ] = 22050,
    mics: Annotated[
        str, typer.Option(metavar="LAYOUT", help="mono, stereo, or a channel count up to 8.")
    ] = "stereo",
    bits: Annotated[str, typer.Option(metavar="32f|24", help="32f (exact sums) or 24.")] = "32f",
    cycle_instruments: Annotated[
        bool,
        typer.Option(
            "--cycle-instruments", help="Cycle through the classes so a few scenes hold them all."
        ),
    ] = False,
    splits: Annotated[
        str,
        typer.Option(
            metavar="TRAIN,VAL,TEST", help="Shares of the splits (normalised), e.g. 0.7,0.1,0.2."
        ),
    ] = "0.8,0.1,0.1",
    sources: Annotated[
        str,
        typer.Option(
            metavar="NAMES",
            help="Sound sources, comma-separated: fluidr3, musescore, csound, freepats, stk, "
            "opl3, additive; 'test:stk' allows a source in one split only (then that split uses "
            "only its own). Default: all but opl3 and additive.",
        ),
    ] = "",
    styles: Annotated[
        str,
        typer.Option(
            metavar="NAMES",
            help="Instrument styles, comma-separated: seen (pcsep-base's first shapes), new "
            "(held out by the shift split: soprano and baritone saxophones, piccolo, alto flute, "
            "bass clarinet, flugelhorn, cornet, bass trombone, electric strings and guitar, stage "
            "keyboard), extra (for training: solid-body strings, semi-hollow guitar, bass flute, "
            "alto clarinet, pocket trumpet, valve trombone), all, or CLASS:STYLE; "
            "'test:new' applies to one split only. A class with no style listed keeps its "
            "seen ones.",
        ),
    ] = "seen",
    clutter: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="P",
            help="Share of scenes scanned as whole rooms: walls, audience seats, tables, "
            "loudspeakers, stands, cases, panels, 1-3 registered views.",
        ),
    ] = 0.0,
    music_splits: Annotated[
        str,
        typer.Option(
            metavar="TRAIN,VAL,TEST",
            help="Shares by which the music's pieces are split (default: --splits); a test-only "
            "set (--splits 0,0,1) given its training set's shares draws only that set's test "
            "pieces.",
        ),
    ] = "",
) -> None:
    """Write a synthetic dataset (scenes, mixtures, stems, solo pool) in the dataset layout."""
    from pcsep_cli.synth.dataset import write_dataset
    from pcsep_cli.synth.sources import DEFAULT_SOURCES

    if min_performers > max_performers:
        raise typer.BadParameter("--min-performers is above --max-performers")
    fractions = _shares("--splits", splits)
    music = _shares("--music-splits", music_splits) if music_splits else None
    mic_arg: str | int = int(mics) if mics.isdigit() else mics
    source_list = tuple(s.strip() for s in sources.split(",") if s.strip()) or DEFAULT_SOURCES
    with ProgressBar("synth") as bar:
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
                sources=source_list,
                styles=tuple(s.strip() for s in styles.split(",") if s.strip()),
                clutter=clutter,
                music_splits=music,
                progress=bar,
            )
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    stdout_console().print(
        f"{safe_text(summary.root)}: "
        f"{summary.written} scenes written, {summary.skipped} already there; "
        f"{summary.pool_written} solo clips written, {summary.pool_skipped} already there; "
        f"{summary.clouds_written} cloud scenes written, {summary.clouds_skipped} already there "
        f"({summary.seconds:.1f} s)",
        soft_wrap=True,
    )


def train(
    config: Annotated[
        str, typer.Argument(help="Training config: a .json or .toml file, or a preset name.")
    ],
    resume: Annotated[
        bool, typer.Option(help="Continue from the run's last checkpoint if there is one.")
    ] = True,
    init_from: Annotated[
        str | None,
        typer.Option(
            help="Start from this model's weights (bundled name, folder or owner/name): "
            "fine-tuning. A config without a model section takes its architecture."
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Your recordings in the real-capture layout (see README)."),
    ] = None,
    data_share: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Share of mixtures drawn from --data."),
    ] = None,
    pool: Annotated[
        Path | None, typer.Option(help="Synthetic dataset (pcsep synth) to mix in.")
    ] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Optimiser steps.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder (checkpoints, model/).")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(help="auto, cpu, cuda or cuda:N (default: the config's device)."),
    ] = None,
    amp: Annotated[
        str | None,
        typer.Option(
            help="Mixed precision: auto (bf16 on a GPU), off, bf16 or fp16 "
            "(default: the config's amp)."
        ),
    ] = None,
) -> None:
    """Train a separation model, or fine-tune one on your own recordings.

    Training mixes and separates clips of a synthetic solo pool (pcsep synth).

    Fine-tuning starts from a model's weights:

    pcsep train finetune --init-from pcsep-base --data DIR --pool DIR

    Several processes or machines:

    torchrun --nproc-per-node N -m pcsep_cli.train CONFIG
    """
    import time

    from pcsep_cli.train.config import PRECISIONS, load_train_config
    from pcsep_cli.train.loop import train as run_training
    from pcsep_cli.train.runtime import env_rank

    changes = {}
    if device is not None:
        if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
            raise typer.BadParameter(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
        changes["device"] = device
    if amp is not None:
        if amp not in PRECISIONS:
            raise typer.BadParameter(f"--amp must be one of {', '.join(PRECISIONS)}, got {amp!r}")
        changes["amp"] = amp
    cfg = load_train_config(
        config,
        init_from=init_from,
        data=None if data is None else str(data),
        data_share=data_share,
        pool=None if pool is None else str(pool),
        steps=steps,
        out_dir=None if out is None else str(out),
    )
    try:
        cfg = cfg.replace(**changes)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    console = stderr_console()

    def show(p: Progress) -> None:
        if p.detail or p.done % 50 == 0:
            m = p.metrics
            line = f"{time.strftime('%H:%M:%S')} step {p.done}/{p.total} loss {m['loss']:.4f}"
            line += f" {m['steps_per_s']:.2f} it/s"
            if "val_loss" in m:
                line += f" val {m['val_loss']:.4f}"
            console.print(line + (f"  {safe_text(p.detail)}" if p.detail else ""))

    out_model = run_training(cfg, resume=resume, progress=show)
    if env_rank() == 0:  # under torchrun, one line for the run, not one per process
        stdout_console().print(f"model: {safe_text(out_model)}", soft_wrap=True)


def evaluate(
    model: Annotated[
        str,
        typer.Argument(help="Bundled name, model folder or Hub id owner/name\\[@revision]."),
    ],
    dataset: Annotated[Path, typer.Argument(help="A folder in the dataset layout.")],
    max_examples: Annotated[int | None, typer.Option(min=1, help="Score the first N.")] = None,
    max_seconds: Annotated[
        float, typer.Option(min=0.5, metavar="SECONDS", help="Seconds scored per example.")
    ] = 10.0,
    views: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Headings each cloud is encoded from, averaged (1 to 64) "
            "\\[default: as separate].",
        ),
    ] = None,
    scene: Annotated[
        bool, typer.Option(help="Find the performers in the whole scene, as separate does.")
    ] = False,
    mic_error: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="METRES",
            help="Move the microphones together this far, in a random direction (robustness).",
        ),
    ] = 0.0,
    mic_jitter: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="METRES",
            help="Then move each microphone this far in its own random direction.",
        ),
    ] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score a model (SDR, SIR, SAR, SI-SDR) beside label, oracle-IRM and mixture baselines."""
    from pcsep_cli.nets.model import DEFAULT_VIEWS
    from pcsep_cli.train.evaluate import evaluate as run_eval
    from pcsep_cli.train.evaluate import markdown_tables

    with ProgressBar("evaluate") as bar:
        report = run_eval(
            model,
            dataset,
            max_examples=max_examples,
            max_seconds=max_seconds,
            views=views or DEFAULT_VIEWS,
            scene=scene,
            mic_error=mic_error,
            mic_jitter=mic_jitter,
            progress=bar,
        )
    if as_json:
        typer.echo(json.dumps(report))
    else:
        tables = "\n".join(safe_text(line) for line in markdown_tables(report).split("\n"))
        stdout_console().print(tables, soft_wrap=True)


def synth_arrays(
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Dataset folder (created).")
    ],
    examples: Annotated[int, typer.Option(min=1, help="Recordings to write.")] = 100,
    split: Annotated[
        str, typer.Option(metavar="SPLIT", help="train, val or test: the music drawn from.")
    ] = "train",
    seed: Annotated[int, typer.Option(help="Everything follows from it.")] = 0,
    arrays: Annotated[
        str,
        typer.Option(
            metavar="KINDS",
            help="Microphone arrays, comma-separated: spaced, ortf, nos, xy, square, circle8 "
            "(default: all).",
        ),
    ] = "",
    same_class: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="P",
            help="Share of ensembles of 2 or 3 players of one instrument (0 to 1).",
        ),
    ] = 0.5,
    rt60: Annotated[
        str, typer.Option(metavar="LOW,HIGH", help="Rooms' reverberation time range, seconds.")
    ] = "0.3,0.7",
    duration: Annotated[
        float, typer.Option(min=0.5, metavar="SECONDS", help="Seconds of audio per recording.")
    ] = 4.0,
) -> None:
    """Write multichannel recordings made with microphone arrays (no clouds) for pcsep-spatial.

    Folders hold mixture.wav, stems/ and meta.json (microphones, where each performer stands).
    """
    from pcsep_cli.synth.arrays import ARRAYS, write_array_dataset

    kinds = tuple(k.strip() for k in arrays.split(",") if k.strip()) or ARRAYS
    unknown = [k for k in kinds if k not in ARRAYS]
    if unknown:
        raise typer.BadParameter(f"unknown array {unknown[0]!r}: choose from {', '.join(ARRAYS)}")
    if split not in ("train", "val", "test"):
        raise typer.BadParameter(f"--split must be train, val or test, got {split!r}")
    try:
        low, high = (float(x) for x in rt60.split(","))
    except ValueError:
        raise typer.BadParameter(f"--rt60 takes two seconds, e.g. 0.3,0.7; got {rt60!r}") from None
    if not 0.05 <= low <= high <= 3.0:
        raise typer.BadParameter(f"--rt60 must satisfy 0.05 <= LOW <= HIGH <= 3, got {rt60!r}")
    with ProgressBar("synth") as bar:
        done = write_array_dataset(
            out,
            seed=seed,
            count=examples,
            split=split,
            kinds=kinds,
            same_class_prob=same_class,
            rt60_range=(low, high),
            duration_s=duration,
            progress=bar,
        )
    stdout_console().print(f"{len(done)} recordings in {safe_text(out / split)}", soft_wrap=True)


def train_spatial(
    data: Annotated[Path, typer.Argument(help="Recordings with microphones (synth-arrays).")],
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Run folder (checkpoint, model/).")
    ],
    base: Annotated[
        str, typer.Option(metavar="MODEL", help="The mono model the head is added to.")
    ] = "pcsep-base",
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seeds the draws.")] = 0,
    notes: Annotated[
        int,
        typer.Option(
            min=0,
            max=256,
            metavar="K",
            help="Pool the scores over a K-component note model of each block (0: off).",
        ),
    ] = 0,
) -> None:
    """Train a spatial head on a mono model: pcsep-spatial from pcsep-base.

    The mono network stays as it is; the head splits its masks by where each performer stands.

    A run killed part-way resumes from its last checkpoint.
    """
    import time

    from pcsep_cli.train.spatial import SpatialTrainConfig
    from pcsep_cli.train.spatial import train_spatial as run

    console = stderr_console()

    def show(p: Progress) -> None:
        if p.done % 50 == 0 or p.done == p.total:
            loss = p.metrics["loss"]
            console.print(f"{time.strftime('%H:%M:%S')} step {p.done}/{p.total} loss {loss:.4f}")

    tc = SpatialTrainConfig(base=base, steps=steps, seed=seed, notes=notes)
    model = run(data, out, tc, progress=show)
    stdout_console().print(f"model: {safe_text(model)}", soft_wrap=True)
