"""``pcsep evaluate MODEL DATASET``: separation quality on a dataset, with baselines.

For every example of the dataset layout (``<example>/scene.*, mixture.*,
stems/<name>.*, meta.json``) the model separates the mixture once per condition and each
estimate is scored against its stem with SDR / SIR / SAR (BSS Eval) and SI-SDR, next to:

- ``labels``: the same mixture separated with the instruments given by hand (the paper's
  reference; needs a model built with ``conditioning="labels"`` or ``"both"``),
- ``oracle_irm``: the ideal ratio mask ``|S_i| / Σ_j |S_j|`` with the model's own STFT (an
  upper bound for any mask with this STFT),
- ``mixture``: the unprocessed mixture as every estimate (the lower bound); the model's
  improvement over it is ``sdri`` / ``si_sdri``.

Everything is scored at the model's sample rate (mixture and stems are resampled to it) over
the first ``max_seconds`` of each example. Masks come from the mono mixture and are applied to
every channel's STFT. Each performer's cloud is cut from the scene with ``labels.npy`` (the
object of each point, written by ``pcsep synth``) and the ``object`` index in ``meta.json``;
scenes without it are cut with a vertical cylinder of ``crop_radius`` around the performer's
``position``, points below ``floor + 0.02`` m dropped (the floor is the scene's 1st height
percentile). Either way this scores the separation, not the scene segmentation
(``pcsep_cli.scene``). ``none`` distractors are cut the same way and only classified.
Performers whose instrument is not among the model's classes are left out of the scores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcsep_cli.errors import DatasetError
from pcsep_cli.hub.models import load_model
from pcsep_cli.nets.model import DEFAULT_VIEWS, SeparationNet
from pcsep_cli.nets.stft import istft, stft
from pcsep_cli.progress import Progress, ProgressFn
from pcsep_cli.scene.canonical import canonical
from pcsep_cli.train.metrics import bss_eval

METRICS = ("sdr", "sir", "sar", "si_sdr")
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".aiff", ".aif")
CLOUD_EXTS = (".ply", ".las", ".laz", ".pcd")
FLOOR_MARGIN = 0.02


def _find(folder: Path, stem: str, exts: tuple[str, ...]) -> Path:
    for ext in exts:
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    raise DatasetError(
        f"no {stem}{{{','.join(exts)}}} here",
        folder,
        "an example folder holds mixture.*, scene.*, stems/<name>.* and meta.json",
    )


def crop_performer(
    xyz: np.ndarray, position: list[float], radius: float, floor: float
) -> np.ndarray:
    """Points of a vertical cylinder around ``position``, above the floor.

    Args:
        xyz: scene points ``(N, 3)``.
        position: performer position ``[x, y, z]`` (z unused).
        radius: cylinder radius, metres.
        floor: floor height; points below ``floor + 0.02`` are dropped.

    Returns:
        ``(M, 3)``.
    """
    d2 = (xyz[:, 0] - position[0]) ** 2 + (xyz[:, 1] - position[1]) ** 2
    return xyz[(d2 <= radius**2) & (xyz[:, 2] > floor + FLOOR_MARGIN)]


@torch.no_grad()
def _separate(
    model: SeparationNet, spec: torch.Tensor, emb: torch.Tensor, length: int
) -> np.ndarray:
    """Masks from the mono mixture applied to each channel → ``(P, C, S)``.

    Args:
        emb: ``(P, D)`` performer embeddings (:meth:`SeparationNet.encode_clouds` or the
            label embedding).
    """
    mono_mag = spec.mean(0).abs()  # the STFT is linear: mean of spectra = spectrum of mean
    zeros = torch.zeros(len(emb), dtype=torch.long)
    masks = torch.sigmoid(model.mask_logits(mono_mag[None, None], model.cond_trunk(emb), zeros))
    # (P, 1, F, T) masks × (1, C, F, T) spectra: one mask for every channel.
    return istft(masks * spec[None], model.config.stft, length).numpy()


def _performer_clouds(folder: Path, objects: list[dict], radius: float) -> list[np.ndarray]:
    """Canonical cloud of each performer / distractor of a scene (see the module docstring)."""
    from pcsep_cli.io.pointcloud import read_cloud

    scene = read_cloud(_find(folder, "scene", CLOUD_EXTS)).xyz
    labels = None
    if (folder / "labels.npy").is_file() and all("object" in o for o in objects):
        labels = np.load(folder / "labels.npy", allow_pickle=False)
        if labels.shape != (len(scene),):
            raise DatasetError(f"labels.npy does not match scene ({len(scene)} points)", folder)
    floor = float(np.percentile(scene[:, 2], 1))
    clouds = []
    for obj in objects:
        if labels is not None:
            pts = scene[labels == obj["object"]]
        else:
            pts = crop_performer(scene, obj["position"], radius, floor)
        # An object the sensor never saw (fully occluded) stays empty: the encoder then sees
        # no voxel, as it would at inference.
        clouds.append(canonical(pts) if len(pts) else np.zeros((0, 3), np.float32))
    return clouds


def read_example(
    folder: Path, sample_rate: int, max_seconds: float
) -> tuple[dict, np.ndarray, list[np.ndarray]]:
    """``(meta, mixture (C, S), stems [(C, S)])`` of one example, at ``sample_rate``.

    Raises:
        DatasetError: unreadable meta.json, a missing stem, or a stem unlike the mixture.
    """
    from pcsep_cli.io.audio import read_audio
    from pcsep_cli.io.resample import resample

    meta_file = folder / "meta.json"
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DatasetError(f"cannot read meta.json: {err}", meta_file) from None
    mix, sr = read_audio(_find(folder, "mixture", AUDIO_EXTS))
    frames = int(max_seconds * sr) if max_seconds else mix.shape[1]
    mix = resample(mix[:, :frames], sr, sample_rate)
    stems = []
    for perf in meta.get("performers", []):
        stem_path = folder / perf["stem"]
        if not stem_path.is_file():
            raise DatasetError(f"stem {perf['stem']} is missing", folder)
        audio, ssr = read_audio(stem_path)
        if ssr != sr or audio.shape[0] != mix.shape[0]:
            raise DatasetError(
                f"stem {perf['stem']} has {audio.shape[0]} ch at {ssr} Hz, mixture "
                f"{mix.shape[0]} ch at {sr} Hz",
                folder,
                "stems must match the mixture's rate and channels",
            )
        stems.append(resample(audio[:, :frames], sr, sample_rate))
    return meta, mix, stems


def _empty_group() -> dict[str, list[float]]:
    return {m: [] for m in (*METRICS, "sdri", "si_sdri")}


def _mean(group: dict[str, list[float]]) -> dict[str, float]:
    out = {k: float(np.nanmean(v)) if len(v) else float("nan") for k, v in group.items()}
    out["count"] = len(group["sdr"])
    return out


class _Tally:
    """Per-source scores of one method, grouped three ways."""

    def __init__(self) -> None:
        self.overall = _empty_group()
        self.groups: dict[str, dict[str, list[float]]] = {}
        self.per_instrument: dict[str, dict[str, list[float]]] = {}

    def add(self, scores: dict, base: dict, instruments: list[str], group: str) -> None:
        for i, inst in enumerate(instruments):
            targets = [
                self.overall,
                self.groups.setdefault(group, _empty_group()),
                self.per_instrument.setdefault(inst, _empty_group()),
            ]
            for t in targets:
                for m in METRICS:
                    t[m].append(float(scores[m][i]))
                t["sdri"].append(float(scores["sdr"][i] - base["sdr"][i]))
                t["si_sdri"].append(float(scores["si_sdr"][i] - base["si_sdr"][i]))

    def summary(self) -> dict[str, Any]:
        return {
            "overall": _mean(self.overall),
            "by_performers": {k: _mean(v) for k, v in sorted(self.groups.items())},
            "per_instrument": {k: _mean(v) for k, v in sorted(self.per_instrument.items())},
        }


def group_name(n: int) -> str:
    """The performer-count group a mixture of ``n`` performers is scored in."""
    return "2" if n <= 2 else "3-4" if n <= 4 else "5+"


@torch.no_grad()
def evaluate(
    model_dir: str | Path,
    dataset_dir: str | Path,
    *,
    max_examples: int | None = None,
    max_seconds: float = 10.0,
    crop_radius: float = 0.6,
    views: int = DEFAULT_VIEWS,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Score a model on a dataset next to the label, oracle and mixture baselines.

    Args:
        model_dir: model directory (``config.json`` + ``model.safetensors``).
        dataset_dir: folder of examples in the dataset layout (above).
        max_examples: evaluate only the first N examples (sorted by name).
        max_seconds: score the first seconds of each example (0: all of it).
        crop_radius: radius of the cylinder cut around each performer, metres.
        views: headings each cloud is encoded from (as ``pcsep separate`` does).
        progress: called after each example.

    Returns:
        ``{"model", "dataset", "examples", "sample_rate", "overall", "by_performers",
        "per_instrument", "classification", "baselines": {"labels", "oracle_irm",
        "mixture"}}``; each metric block maps ``sdr, sir, sar, si_sdr, sdri, si_sdri`` to its
        mean in dB (plus ``count``). ``baselines.labels`` is None when the model cannot take
        labels.

    Raises:
        DatasetError: the dataset does not follow the layout.
        ModelError: the model directory cannot be loaded.
    """
    model = load_model(str(model_dir))
    cfg = model.config
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetError("dataset folder not found", root, "pass a folder of examples")
    examples = sorted(p for p in root.iterdir() if (p / "meta.json").is_file())
    if max_examples:
        examples = examples[:max_examples]
    if not examples:
        raise DatasetError("no example folders (with meta.json) here", root)
    tallies = {k: _Tally() for k in ("model", "labels", "oracle_irm", "mixture")}
    correct = total = none_correct = none_total = 0
    for done, folder in enumerate(examples, 1):
        meta, mix, stems = read_example(folder, cfg.sample_rate, max_seconds)
        keep = [i for i, p in enumerate(meta["performers"]) if p["instrument"] in cfg.classes]
        instruments = [meta["performers"][i]["instrument"] for i in keep]
        length = mix.shape[1]
        spec = stft(torch.from_numpy(mix), cfg.stft)
        refs = np.stack([stems[i] for i in keep]) if keep else None
        # A distractor the sensor never saw is not in the cloud: nothing to classify.
        distractors = [d for d in meta.get("distractors", []) if d.get("points", 1) > 0]
        objects = [meta["performers"][i] for i in keep] + distractors
        clouds = _performer_clouds(folder, objects, crop_radius)
        if model.accepts_clouds and clouds:
            emb, logp = model.encode_clouds(clouds, views)
            est = _separate(model, spec, emb, length)
            pred = logp.argmax(1).tolist()
            truth = [cfg.classes.index(i) for i in instruments] + [len(cfg.classes) - 1] * len(
                distractors
            )
            for p, t in zip(pred, truth, strict=True):
                if t == len(cfg.classes) - 1:
                    none_total += 1
                    none_correct += int(p == t)
                else:
                    total += 1
                    correct += int(p == t)
            est = est[: len(keep)]
        else:
            est = None
        if keep:
            n = len(meta["performers"])
            group = group_name(n)
            mix_est = np.repeat(mix[None], len(keep), axis=0)
            base = bss_eval(refs, mix_est)
            tallies["mixture"].add(base, base, instruments, group)
            mags = np.abs(stft(torch.from_numpy(np.stack(stems)), cfg.stft).numpy())
            irm = mags[keep] / (mags.sum(0, keepdims=True) + 1e-8)
            irm_est = istft(torch.from_numpy(irm) * spec[None], cfg.stft, length).numpy()
            tallies["oracle_irm"].add(bss_eval(refs, irm_est), base, instruments, group)
            if est is not None:
                tallies["model"].add(bss_eval(refs, est), base, instruments, group)
            if model.accepts_labels:
                labels = torch.tensor([cfg.classes.index(i) for i in instruments])
                lab_est = _separate(model, spec, model.encode_condition(labels)[0], length)
                tallies["labels"].add(bss_eval(refs, lab_est), base, instruments, group)
        if progress:
            progress(Progress("evaluate", done, len(examples), "example", folder.name))
    main = "model" if model.accepts_clouds else "labels"
    result: dict[str, Any] = {
        "model": str(model_dir),
        "dataset": str(dataset_dir),
        "examples": len(examples),
        "sample_rate": cfg.sample_rate,
        "max_seconds": max_seconds,
        "views": views,
        "conditioning": "cloud" if model.accepts_clouds else "labels",
        **tallies[main].summary(),
        "classification": {
            "accuracy": correct / total if total else None,
            "performers": total,
            "none_accuracy": none_correct / none_total if none_total else None,
            "distractors": none_total,
        },
        "baselines": {
            "labels": tallies["labels"].summary() if model.accepts_labels else None,
            "oracle_irm": tallies["oracle_irm"].summary(),
            "mixture": tallies["mixture"].summary(),
        },
    }
    return result


def markdown_tables(report: dict[str, Any]) -> str:
    """The model card's evaluation tables (Markdown) from an :func:`evaluate` report."""
    base = report["baselines"]
    rows = [("pcsep (point clouds)", report if report["conditioning"] == "cloud" else None)]
    rows += [
        ("labels reference", base["labels"]),
        ("oracle IRM", base["oracle_irm"]),
        ("mixture", base["mixture"]),
    ]
    groups = sorted(report["by_performers"])
    head = "| method | SDR | SIR | SAR | SI-SDR | SDRi | " + " | ".join(
        f"SDRi ({g} perf.)" for g in groups
    )
    lines = [head + " |", "|---" * (6 + len(groups)) + "|"]
    for name, block in rows:
        if block is None:
            continue
        o = block["overall"]
        cells = [f"{o[m]:.2f}" for m in ("sdr", "sir", "sar", "si_sdr", "sdri")]
        cells += [
            f"{block['by_performers'].get(g, {}).get('sdri', float('nan')):.2f}" for g in groups
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| instrument | sources | SDR | SDRi | SDRi (labels) | SDRi (oracle IRM) |"]
    lines.append("|---|---|---|---|---|---|")
    for inst, vals in report["per_instrument"].items():
        lab = (base["labels"] or {}).get("per_instrument", {}).get(inst, {})
        irm = base["oracle_irm"]["per_instrument"].get(inst, {})
        lines.append(
            f"| {inst} | {vals['count']} | {vals['sdr']:.2f} | {vals['sdri']:.2f} | "
            f"{lab.get('sdri', float('nan')):.2f} | {irm.get('sdri', float('nan')):.2f} |"
        )
    cls = report["classification"]
    if cls["accuracy"] is not None:
        lines += [
            "",
            f"Instrument classification: {100 * cls['accuracy']:.1f}% of {cls['performers']} "
            f"performers; `none` recognised for {100 * (cls['none_accuracy'] or 0):.1f}% of "
            f"{cls['distractors']} distractors.",
        ]
    return "\n".join(lines) + "\n"
