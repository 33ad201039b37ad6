"""Model cards for the Hub: the metadata Hub users expect, merged into a folder's own card.

A card is ``README.md``: a YAML block between ``---`` lines, then Markdown. :func:`build_card`
keeps the body of the folder's card as it is and merges the metadata:

- ``library_name: pcsep``, ``pipeline_tag: audio-to-audio`` (unless the card sets one) and the
  tags :data:`TAGS` beside the card's own;
- ``license``: the card's, or the one given; ``datasets``: the card's and the ones given
  (Hub dataset ids);
- ``model-index``: the overall figures of a ``pcsep evaluate --json`` report
  (:func:`read_eval_report`), which replace earlier results on the same dataset.

``huggingface_hub``'s :class:`~huggingface_hub.ModelCardData` writes the YAML, so the
``model-index`` layout is the Hub's own. A folder without a card gets a short one (classes,
sample rate, how to use it); a card without an evaluation section gets one when a report is
given, which ``pcsep models info`` then shows. Nothing here touches the network or torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcsep_cli.errors import ModelError

LIBRARY_NAME = "pcsep"
TAGS = ("pcsep", "audio-source-separation", "point-cloud", "music")
PIPELINE_TAG = "audio-to-audio"
TASK_TYPE = "audio-source-separation"
TASK_NAME = "Music source separation conditioned on 3D point clouds"
#: Where model-index names a dataset that is not on the Hub (no ``--dataset`` given).
LOCAL_DATASET = "custom"
#: Report key → (model-index metric type, name shown): the overall means in dB.
METRICS = (
    ("sdr", "sdr", "SDR (dB)"),
    ("sir", "sir", "SIR (dB)"),
    ("sar", "sar", "SAR (dB)"),
    ("si_sdr", "si-sdr", "SI-SDR (dB)"),
    ("sdri", "sdri", "SDRi (dB)"),
    ("si_sdri", "si-sdri", "SI-SDRi (dB)"),
)
_SPLITS = {"train", "val", "validation", "test"}
_REPORT_HINT = "pass the JSON that `pcsep evaluate MODEL DATASET --json > results.json` wrote"


@dataclass(frozen=True)
class Score:
    """One figure of an evaluation.

    Attributes:
        type: model-index metric type (``"sdr"``, ``"accuracy"`` ...).
        name: what the card shows (``"SDR (dB)"``).
        value: the mean, rounded to 2 decimals.
        ci95: its 95 % bootstrap interval, or ``None``.
    """

    type: str
    name: str
    value: float
    ci95: tuple[float, float] | None


@dataclass(frozen=True)
class EvalSummary:
    """What a card keeps of a ``pcsep evaluate`` report.

    Attributes:
        dataset: the dataset folder's last two parts (``"data/test"``): no local path leaks.
        split: the folder's name when it is a split (``"test"``), else ``None``.
        method: ``"point clouds"``, ``"scene step"`` or ``"labels"``.
        examples: scenes scored; stems: stems scored; max_seconds: seconds scored per scene.
        scores: the overall figures, and classification accuracy (%) when the report has it.
    """

    dataset: str
    split: str | None
    method: str
    examples: int
    stems: int
    max_seconds: float
    scores: tuple[Score, ...]


def read_eval_report(file: str | Path) -> EvalSummary:
    """Read the overall figures of a ``pcsep evaluate --json`` report.

    Raises:
        ModelError: unreadable file, not JSON, or no figure where the report keeps them.
    """
    path = Path(file)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ModelError(f"cannot read the evaluation: {err.strerror or err}", path) from None
    except (UnicodeDecodeError, ValueError) as err:
        raise ModelError(f"the evaluation is not JSON ({err})", path, _REPORT_HINT) from None
    overall = report.get("overall") if isinstance(report, dict) else None
    if not isinstance(overall, dict):
        raise ModelError("not a `pcsep evaluate` report (no 'overall' figures)", path, _REPORT_HINT)
    scores = [
        Score(kind, name, *fig)
        for key, kind, name in METRICS
        if (fig := _figure(overall.get(key))) is not None
    ]
    if not scores:
        raise ModelError("the report's 'overall' holds no figure", path, _REPORT_HINT)
    classification = report.get("classification")
    if isinstance(classification, dict):
        fig = _figure(classification.get("accuracy"), scale=100.0)
        if fig is not None:
            scores.append(Score("accuracy", "Instrument classification (%)", *fig))
    dataset = Path(str(report.get("dataset") or "dataset"))
    method = "labels" if report.get("conditioning") == "labels" else "point clouds"
    if report.get("scene_step"):
        method = "scene step"
    return EvalSummary(
        dataset="/".join(dataset.parts[-2:]) or "dataset",
        split=dataset.name if dataset.name in _SPLITS else None,
        method=method,
        examples=_count(report.get("examples")),
        stems=_count(report.get("stems")),
        max_seconds=float(report.get("max_seconds") or 0.0),
        scores=tuple(scores),
    )


def _figure(fig: Any, scale: float = 1.0) -> tuple[float, tuple[float, float] | None] | None:
    """``(mean, ci95)`` of a report figure ``{"mean", "ci95", "n"}``; None when it has none."""
    if not isinstance(fig, dict) or not _finite(fig.get("mean")) or not fig.get("n"):
        return None
    ci = fig.get("ci95")
    interval = None
    if isinstance(ci, list) and len(ci) == 2 and all(_finite(c) for c in ci):
        interval = (_round(scale * ci[0]), _round(scale * ci[1]))
    return _round(scale * fig["mean"]), interval


def _round(value: float) -> float:
    return round(value, 2) + 0.0  # + 0.0: no "-0.0" on a card


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def split_card(text: str, where: str | Path) -> tuple[dict[str, Any], str]:
    """A card's YAML metadata and its Markdown body (the Hub's own rule for the YAML block).

    Raises:
        ModelError: the YAML block does not parse, or is not a mapping.
    """
    import yaml
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    match = REGEX_YAML_BLOCK.search(text)
    if match is None:
        return {}, text
    hint = "fix the YAML between the --- lines at the top of README.md"
    try:
        meta = yaml.safe_load(match.group(2))
    except yaml.YAMLError as err:
        first = " ".join(str(err).split())[:200]
        raise ModelError(f"the card's metadata is not valid YAML ({first})", where, hint) from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ModelError("the card's metadata is not a mapping of keys", where, hint)
    return meta, text[match.end() :]


@dataclass(frozen=True)
class ModelFacts:
    """What a generated card says about the model (from its validated config).

    Attributes:
        name: the repository's name; use_ref: what ``--model`` takes to use it;
        classes, sample_rate, conditioning: from ``config.json``.
    """

    name: str
    use_ref: str
    classes: tuple[str, ...]
    sample_rate: int
    conditioning: str


def build_card(
    text: str | None,
    facts: ModelFacts,
    *,
    evaluation: EvalSummary | None = None,
    datasets: Sequence[str] = (),
    license: str | None = None,  # noqa: A002 - the Hub's key
    where: str | Path = "README.md",
) -> str:
    """The card to publish: the folder's card (or a generated one) with merged metadata.

    Args:
        text: the folder's ``README.md``, or ``None`` when it has none.
        facts: the model, for a generated card.
        evaluation: figures for ``model-index`` (and an evaluation section if the body has
            none).
        datasets: Hub dataset ids added to ``datasets``.
        license: replaces the card's ``license`` when given.
        where: the card's path, for messages.

    Returns:
        The card's text: ``---``, YAML, ``---``, then the body.

    Raises:
        ModelError: the card's YAML or its ``model-index`` is invalid.
    """
    from huggingface_hub import ModelCardData

    meta, body = split_card(text, where) if text is not None else ({}, _default_body(facts))
    order = list(meta)
    try:
        data = ModelCardData(**meta)
    except (TypeError, ValueError) as err:
        first = " ".join(str(err).split())[:200]
        raise ModelError(
            f"the card's metadata is invalid ({first})",
            where,
            "fix or remove its model-index; pass --eval to write it from `pcsep evaluate`",
        ) from None
    data.library_name = LIBRARY_NAME
    data.pipeline_tag = data.pipeline_tag or PIPELINE_TAG
    data.tags = _unique([*_as_list(data.tags), *TAGS])
    if license:
        data.license = license
    all_datasets = _unique([*_as_list(data.datasets), *datasets])
    data.datasets = all_datasets or None
    if evaluation is not None:
        data.model_name = data.model_name or facts.name
        new = _eval_results(evaluation, all_datasets[0] if all_datasets else LOCAL_DATASET)
        kept = [
            r
            for r in data.eval_results or []
            if (r.task_type, r.dataset_name) != (TASK_TYPE, evaluation.dataset)
        ]
        data.eval_results = kept + new
        if not _has_evaluation_section(body):
            body = body.rstrip("\n") + "\n\n" + _evaluation_section(evaluation)
    return f"---\n{data.to_yaml(original_order=order)}\n---\n{body}"


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _eval_results(evaluation: EvalSummary, dataset_type: str) -> list[Any]:
    from huggingface_hub import EvalResult

    return [
        EvalResult(
            task_type=TASK_TYPE,
            task_name=TASK_NAME,
            dataset_type=dataset_type,
            dataset_name=evaluation.dataset,
            dataset_split=evaluation.split,
            metric_type=score.type,
            metric_name=score.name,
            metric_value=score.value,
        )
        for score in evaluation.scores
    ]


def _has_evaluation_section(body: str) -> bool:
    return any(
        line.lstrip().startswith("#") and "evaluation" in line.lower() for line in body.splitlines()
    )


def _evaluation_section(evaluation: EvalSummary) -> str:
    split = f", split {evaluation.split}" if evaluation.split else ""
    lines = [
        "## Evaluation",
        "",
        f"`pcsep evaluate` on `{evaluation.dataset}`{split}: {evaluation.examples} scenes, "
        f"{evaluation.stems} stems, first {evaluation.max_seconds:g} s of each, conditioned on "
        f"{evaluation.method}. Means over stems with 95 % bootstrap intervals over scenes.",
        "",
        "| metric | value | 95 % interval |",
        "|---|---|---|",
    ]
    for score in evaluation.scores:
        ci = f"[{score.ci95[0]:.2f}, {score.ci95[1]:.2f}]" if score.ci95 else "-"
        lines.append(f"| {score.name} | {score.value:.2f} | {ci} |")
    return "\n".join(lines) + "\n"


def _default_body(facts: ModelFacts) -> str:
    classes = ", ".join(f"`{c}`" for c in facts.classes)
    return (
        f"\n# {facts.name}\n\n"
        "A pcsep model: it separates a music recording into "
        "one audio file per instrument seen in a 3D point cloud of the performers.\n\n"
        "| | |\n|---|---|\n"
        f"| classes | {classes} (the last is detected, never separated) |\n"
        f"| sample rate | {facts.sample_rate} Hz |\n"
        f"| conditioning | {facts.conditioning} |\n"
        "| files | `config.json`, `model.safetensors`, this card |\n\n"
        "## Use\n\n"
        "```bash\n"
        f"pcsep separate concert.wav scene.ply --model {facts.use_ref}\n"
        "```\n"
    )


__all__ = [
    "LIBRARY_NAME",
    "PIPELINE_TAG",
    "TAGS",
    "TASK_TYPE",
    "EvalSummary",
    "ModelFacts",
    "Score",
    "build_card",
    "read_eval_report",
    "split_card",
]
