"""Mix-and-separate batches: random solos mixed on the fly, with their clouds.

Each mixture takes 2-4 performers of *different* instruments (a centred cloud cannot tell two
violins apart, so a same-instrument pair would have no right answer), one random excerpt of
each at a random gain, or (``coherent_prob``) 2-4 performers of one scene playing together,
and optionally one ``none`` distractor whose target is silence. The
model sees the mono sum; the targets are each source's mono excerpt at its gain. With
``same_class_prob`` a mixture may hold two performers of one instrument; the one right answer
for either is then the instrument's whole part (the sum of the two), which is each one's
target (the spatial head, not the mono network, splits a class).

Every mixture (and every cloud of a visual-only batch) draws from its own child of the step's
random source (``rng.spawn``), so any part of a batch can be built alone and comes out as it
does in the whole batch: the processes of a distributed run each build their share
(``items``) of the batch one process would draw.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pcsep_cli.nets.stft import StftConfig, stft
from pcsep_cli.train.augment import augment
from pcsep_cli.train.config import TrainConfig
from pcsep_cli.train.pool import Pool, PoolMix, Solo, pick


@dataclass
class Batch:
    """One training step's input and targets.

    Attributes:
        mix_mag: ``(B, 1, F, T)`` mixture magnitudes (mono).
        src_mag: ``(P, 1, F, T)`` target magnitudes, zero for distractors.
        cond: ``SparseTensor`` of P clouds (``"cloud"`` mode) or labels ``(P,)``.
        labels: ``(P,)`` long, class of each performer.
        mix_index: ``(P,)`` long, mixture of each performer.
        is_source: ``(P,)`` bool, False for distractors.
    """

    mix_mag: Tensor
    src_mag: Tensor
    cond: Any
    labels: Tensor
    mix_index: Tensor
    is_source: Tensor

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with every tensor (and the clouds) on ``device``."""
        return replace(
            self,
            mix_mag=self.mix_mag.to(device),
            src_mag=self.src_mag.to(device),
            cond=self.cond.to(device),
            labels=self.labels.to(device),
            mix_index=self.mix_index.to(device),
            is_source=self.is_source.to(device),
        )


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """The random source of one step: depends only on (seed, step, stream)."""
    return np.random.default_rng([seed, stream, step])


def _start(solo: Solo, rng: np.random.Generator) -> int:
    """A random start among the solo's non-silent excerpts."""
    return int(solo.active[rng.integers(len(solo.active))])


def _excerpt(audio: np.ndarray, start: int, length: int) -> np.ndarray:
    """``audio[:, start : start + length]``, zero-padded at the end to ``length``."""
    out = audio[:, start : start + length]
    if out.shape[1] < length:
        out = np.pad(out, ((0, 0), (0, length - out.shape[1])))
    return out


def random_eq(x: np.ndarray, rng: np.random.Generator, db: float, sample_rate: int) -> np.ndarray:
    """``x`` through a random smooth equaliser: another instrument maker, microphone or room.

    The gain curve, on a log-frequency axis from 20 Hz to Nyquist scaled to [0, 1], is a tilt
    of up to ±``db`` from end to end plus three bell-shaped bumps of up to ±``db``/2, each
    0.03-0.15 of the axis wide (a third of an octave to two octaves at 22.05 kHz).

    Args:
        x: mono excerpt ``(S,)``.
        rng: draws the curve.
        db: the largest tilt (dB).
        sample_rate: Hz.

    Returns:
        float32 ``(S,)``.
    """
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / sample_rate)
    axis = np.log(np.maximum(freqs, 20.0) / 20.0) / np.log(sample_rate / 2 / 20.0)
    curve = rng.uniform(-db, db) * (axis - 0.5)
    for _ in range(3):
        centre, width = rng.uniform(0, 1), rng.uniform(0.03, 0.15)
        curve += rng.uniform(-db, db) / 2 * np.exp(-0.5 * ((axis - centre) / width) ** 2)
    return np.fft.irfft(spec * 10 ** (curve / 20), n=len(x)).astype(np.float32)


def _sources(
    pool: Pool, cfg: TrainConfig, rng: np.random.Generator, length: int
) -> Iterator[tuple[Solo, np.ndarray, float | None]]:
    """The performers of one mixture: ``(solo, mono excerpt, level)``, drawn lazily from ``rng``.

    Usually 2-4 instruments, each a random excerpt of a random performer (``level`` None: each
    excerpt is brought to the same loudness). With chance ``cfg.coherent_prob``, the performers
    of one scene at the same moment instead (an ensemble: one piece, shared onsets and
    harmonies, as at separation time); ``level`` is then each performer's loudness over the
    whole recording, so one resting in the excerpt stays quiet.
    """
    if cfg.coherent_prob > 0 and pool.ensembles and rng.random() < cfg.coherent_prob:
        group = pool.ensembles[rng.integers(len(pool.ensembles))]
        high = min(cfg.max_sources, len(group))
        n = int(rng.integers(min(cfg.min_sources, high), high + 1))
        solos = [pool.solos[i] for i in rng.choice(group, size=n, replace=False)]
        start = _start(solos[0], rng)
        for solo in solos:
            yield solo, _excerpt(solo.audio, start, length).mean(0), solo.level
        return
    labels_avail = sorted(pool.by_label)
    max_src = min(cfg.max_sources, len(labels_avail))
    min_src = min(cfg.min_sources, max_src)
    n = int(rng.integers(min_src, max_src + 1))
    labs = [int(lab) for lab in rng.choice(labels_avail, size=n, replace=False)]
    if cfg.same_class_prob > 0 and n >= 2 and rng.random() < cfg.same_class_prob:
        twins = [lab for lab in labs[:-1] if len(pool.by_label[lab]) > 1]
        if twins:  # the last performer becomes a second player of an instrument already drawn
            labs[-1] = twins[rng.integers(len(twins))]
    taken: set[int] = set()
    for lab in labs:
        candidates = [i for i in pool.by_label[lab] if i not in taken]
        idx = candidates[rng.integers(len(candidates))]
        taken.add(idx)
        solo = pool.solos[idx]
        yield solo, _excerpt(solo.audio, _start(solo, rng), length).mean(0), None


def make_batch(
    pools: Pool | PoolMix,
    cfg: TrainConfig,
    rng: np.random.Generator,
    *,
    train: bool = True,
    clouds: bool = True,
    items: Sequence[int] | None = None,
) -> Batch:
    """Draw one batch, or some of its mixtures.

    Args:
        pools: performers of the split (or two pools, each mixture drawn from one).
        cfg: training config (sizes, gains, augmentation, model).
        rng: random source (see :func:`step_rng`); each of the ``cfg.batch_size`` mixtures
            draws from its own child of it.
        train: augment the clouds (validation batches are not augmented).
        clouds: condition on clouds (``cond`` is a ``SparseTensor``) rather than labels;
            ignored for a ``"labels"`` model.
        items: which of the batch's mixtures to build (all when ``None``): they are the
            same whichever others are built with them.
    """
    length = cfg.segment_samples
    children = rng.spawn(cfg.batch_size)
    mixes, sources, points, labels, mix_index, is_source = [], [], [], [], [], []
    owners: list[np.random.Generator] = []  # the random source of each performer's mixture
    for b, item in enumerate(range(cfg.batch_size) if items is None else items):
        own = children[item]
        pool = pick(pools, own)
        mix = np.zeros(length, np.float32)
        first = len(sources)
        for solo, x, level in _sources(pool, cfg, own, length):
            if cfg.eq_db > 0:
                x = random_eq(x, own, cfg.eq_db, cfg.model.sample_rate)
            x = x / ((np.sqrt(np.mean(x**2)) if level is None else level) + 1e-8) * 0.1
            x = (x * 10 ** (own.uniform(-cfg.gain_db, cfg.gain_db) / 20)).astype(np.float32)
            mix += x
            sources.append(x)
            points.append(solo.points)
            labels.append(solo.label)
            mix_index.append(b)
            is_source.append(True)
            owners.append(own)
        if cfg.same_class_prob > 0:  # each player of a class answers for the class's whole part
            for lab in set(labels[first:]):
                rows = [i for i in range(first, len(sources)) if labels[i] == lab]
                if len(rows) > 1:
                    part = np.sum([sources[i] for i in rows], axis=0, dtype=np.float32)
                    for i in rows:
                        sources[i] = part
        if pool.distractors and own.random() < cfg.distractor_prob:
            d = pool.distractors[own.integers(len(pool.distractors))]
            sources.append(np.zeros(length, np.float32))
            points.append(d.points)
            labels.append(d.label)
            mix_index.append(b)
            is_source.append(False)
            owners.append(own)
        mixes.append(mix)
    st: StftConfig = cfg.model.stft
    mix_mag = stft(torch.from_numpy(np.stack(mixes)), st).abs()[:, None]
    src_mag = stft(torch.from_numpy(np.stack(sources)), st).abs()[:, None]
    label_t = torch.tensor(labels, dtype=torch.long)
    if clouds and cfg.model.conditioning != "labels":
        views = [
            augment(p, r, cfg.augment) if train else p for p, r in zip(points, owners, strict=True)
        ]
        cond: Any = clouds_to_tensor(views, cfg.model.visual.voxel_size)
    else:
        cond = label_t
    return Batch(
        mix_mag,
        src_mag,
        cond,
        label_t,
        torch.tensor(mix_index, dtype=torch.long),
        torch.tensor(is_source, dtype=torch.bool),
    )


def clouds_to_tensor(clouds: list[np.ndarray], voxel_size: float) -> Any:
    """Canonical clouds ``[(N_i, 3)]`` → one ``SparseTensor`` with batch index i."""
    from pcsep_cli.nets.visual import cloud_to_sparse

    return cloud_to_sparse([torch.from_numpy(c) for c in clouds], voxel_size)


def make_cloud_batch(
    pools: Pool | PoolMix,
    cfg: TrainConfig,
    rng: np.random.Generator,
    count: int,
    items: Sequence[int] | None = None,
) -> tuple[Any, Tensor]:
    """``count`` augmented clouds for the visual encoder alone, or some of them.

    Each is ``none`` with chance ``cfg.none_share`` (when > 0), else of a class drawn uniformly
    among the pool's instruments (``none`` included as one more class when ``none_share`` is
    0), then a performer of that class among the solos and the visual-only ``soundless`` ones
    (drawn and augmented from the cloud's own child of ``rng``).

    Args:
        pools: performers of the split (of two pools, one is drawn for the whole call).
        cfg: training config.
        rng: random source (see :func:`step_rng`).
        count: clouds in the whole batch.
        items: which of them to build (all when ``None``).

    Returns:
        ``(SparseTensor of the clouds, labels (len(items),) long)``.
    """
    pool = pick(pools, rng)  # one pool for the whole call
    none = len(cfg.model.classes) - 1
    instruments = sorted(pool.by_label.keys() | pool.soundless_by_label.keys())
    if cfg.none_share > 0 and pool.distractors:
        draws = np.where(rng.random(count) < cfg.none_share, none, rng.choice(instruments, count))
    else:
        draws = rng.choice(instruments + ([none] if pool.distractors else []), size=count)
    children = rng.spawn(count)
    clouds, out = [], []
    for k in range(count) if items is None else items:
        lab, own = draws[k], children[k]
        if lab == none:
            item = pool.distractors[own.integers(len(pool.distractors))]
        else:
            candidates = [pool.solos[i] for i in pool.by_label.get(int(lab), [])]
            candidates += [pool.soundless[i] for i in pool.soundless_by_label.get(int(lab), [])]
            item = candidates[own.integers(len(candidates))]
        clouds.append(augment(item.points, own, cfg.augment))
        out.append(item.label)
    cond = clouds_to_tensor(clouds, cfg.model.visual.voxel_size)
    return cond, torch.tensor(out, dtype=torch.long)
