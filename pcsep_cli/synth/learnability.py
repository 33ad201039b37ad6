"""Is the synthetic geometry learnable? A small classifier on simple shape features.

Each sample is one performer (or distractor) scanned alone from a random viewpoint
(:func:`pcsep_cli.synth.scene.performer_cloud`); its points are described by features that do
not depend on where the sensor stood (heights, distances from the vertical axis, principal
extents — geometry only, no colour). A random forest learns the ten classes plus ``none`` on
one range of body ids and is scored on bodies it never saw.

Usage: ``python -m pcsep_cli.synth.learnability [--train 40] [--test 15] [--seed 0]``
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pcsep_cli.synth.instruments import CLASSES

LABELS: tuple[str, ...] = (*CLASSES, "none")
Z_BINS = np.linspace(0.0, 2.2, 12)
R_BINS = np.array([0.0, 0.1, 0.2, 0.3, 0.45, 0.65, 0.9, 1.6])
TEST_BODIES = 2_000_000  # test bodies start here; training bodies start at 0


def features(xyz: np.ndarray) -> np.ndarray:
    """Shape features of one object's points, invariant to rotation about the vertical.

    Args:
        xyz: float64 [N, 3] points of one object, floor at z = 0, N >= 10.

    Returns:
        float64 [F] features: a height × radius occupancy histogram about the vertical axis
        through the centroid, the radial spread per height, principal horizontal extents,
        height percentiles.

    Raises:
        ValueError: ``xyz`` is not [N, 3] with N >= 10.
    """
    xyz = np.asarray(xyz, np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) < 10:
        raise ValueError(f"xyz must be [N>=10, 3], got {xyz.shape}")
    xy = xyz[:, :2] - xyz[:, :2].mean(0)
    z = xyz[:, 2]
    r = np.linalg.norm(xy, axis=1)
    hist, _, _ = np.histogram2d(np.clip(z, 0, 2.19), np.clip(r, 0, 1.59), (Z_BINS, R_BINS))
    hist /= len(xyz)
    which = np.clip(np.digitize(z, Z_BINS) - 1, 0, len(Z_BINS) - 2)
    spread = np.array(
        [r[which == k].std() if np.any(which == k) else 0.0 for k in range(len(Z_BINS) - 1)]
    )
    cov = np.cov(xy.T) + 1e-9 * np.eye(2)
    axes = np.sqrt(np.sort(np.linalg.eigvalsh(cov))[::-1])
    _, vectors = np.linalg.eigh(cov)
    along = xy @ vectors
    extents = np.ptp(along, axis=0)[::-1]
    heights = np.percentile(z, [5, 25, 50, 75, 95, 100])
    return np.concatenate([hist.ravel(), spread, axes, extents, heights])


@dataclass
class Result:
    """Held-out scores of the classifier.

    Attributes:
        accuracy: fraction of test samples classified right.
        confusion: int [C, C], rows = true class, columns = predicted, order ``labels``.
        labels: class names.
        n_train, n_test: samples per class.
    """

    accuracy: float
    confusion: np.ndarray
    labels: tuple[str, ...]
    n_train: int
    n_test: int

    def report(self) -> str:
        """The confusion matrix and accuracy as text."""
        short = [label[:6] for label in self.labels]
        lines = [" " * 12 + " ".join(f"{s:>6}" for s in short)]
        for label, row in zip(self.labels, self.confusion, strict=True):
            lines.append(f"{label:>11} " + " ".join(f"{v:6d}" for v in row))
        chance = 1.0 / len(self.labels)
        lines.append(
            f"accuracy {self.accuracy:.3f} on {self.n_test} held-out bodies per class "
            f"(chance {chance:.3f}); trained on {self.n_train} per class"
        )
        return "\n".join(lines)


def dataset(
    rng: np.random.Generator, per_class: int, first_body: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features [N, F] and class indices [N] of ``per_class`` scans of each class."""
    from pcsep_cli.synth.scene import performer_cloud

    x, y = [], []
    body = first_body
    for _ in range(per_class):
        for k, label in enumerate(LABELS):
            cloud = performer_cloud(rng, label, body_id=body)
            body += 1
            points = cloud.xyz[cloud.object_index == 0]
            if len(points) < 10:  # seen edge-on at the grazing limit: nothing to learn from
                continue
            x.append(features(points))
            y.append(k)
    return np.array(x), np.array(y)


def run(n_train: int = 40, n_test: int = 15, seed: int = 0) -> Result:
    """Train on bodies ``0 ..``, test on bodies from :data:`TEST_BODIES`, return the scores."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(seed)
    x_train, y_train = dataset(rng, n_train, 0)
    x_test, y_test = dataset(rng, n_test, TEST_BODIES)
    model = RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1)
    model.fit(x_train, y_train)
    predicted = model.predict(x_test)
    confusion = confusion_matrix(y_test, predicted, labels=range(len(LABELS)))
    return Result(float(np.mean(predicted == y_test)), confusion, LABELS, n_train, n_test)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry: print the confusion matrix and the accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=40, help="training scans per class")
    parser.add_argument("--test", type=int, default=15, help="held-out scans per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(run(args.train, args.test, args.seed).report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
