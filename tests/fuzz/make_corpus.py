"""Write the fuzz seed files in ``tests/fuzz/corpus/`` with the real libraries.

Run from the repository root when a reader learns a new format:
``.venv/bin/python tests/fuzz/make_corpus.py``. The seeds are small (tens of points, a few
hundred samples) so each mutated input parses in milliseconds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/, for helpers (pytest does this for the tests)

from helpers.clouds import (  # noqa: E402
    E57Scan,
    write_e57_file,
    write_las_file,
    write_pcd_file,
    write_ply_file,
)

CORPUS = HERE / "corpus"


def main() -> None:
    """Write every seed (clouds, audio) into ``CORPUS``."""
    CORPUS.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-2, 2, (24, 3))
    rgb = rng.integers(0, 256, (24, 3)).astype(np.uint8)
    inten = rng.uniform(0, 1, 24).astype(np.float32)
    write_ply_file(CORPUS / "ascii.ply", xyz, rgb, encoding="ascii")
    write_ply_file(CORPUS / "le.ply", xyz, rgb, inten, encoding="binary_little_endian")
    write_ply_file(CORPUS / "be-faces.ply", xyz, encoding="binary_big_endian", faces=3)
    write_las_file(CORPUS / "v12-pf3.las", xyz, rgb, version="1.2", point_format=3)
    write_las_file(CORPUS / "v14-pf7.laz", xyz, rgb, version="1.4", point_format=7)
    for enc in ("ascii", "binary", "binary_compressed"):
        write_pcd_file(
            CORPUS / f"{enc}.pcd", xyz, rgb, encoding=enc, packed_float_rgb=enc != "ascii"
        )
    write_e57_file(CORPUS / "cartesian.e57", E57Scan(xyz=xyz, rgb=rgb, intensity=inten))
    spherical = np.stack([np.linalg.norm(xyz, axis=1), *np.deg2rad([[10] * 24, [-5] * 24])], 1)
    spherical[:, 1] += np.linspace(0, 3, 24)
    invalid = np.zeros(24, dtype=np.int8)
    invalid[[2, 9, 17]] = [1, 2, 1]
    write_e57_file(
        CORPUS / "spherical-invalid.e57",
        E57Scan(spherical=spherical, invalid=invalid, intensity=inten, coords="scaled"),
    )
    write_e57_file(
        CORPUS / "two-scans-poses.e57",
        E57Scan(xyz=xyz[:12], rgb=rgb[:12], rotation=(0.8, 0.0, 0.0, 0.6), translation=(3, 1, 0)),
        E57Scan(xyz=xyz[12:], rgb=rgb[12:], translation=(-2, 0, 0.5), coords="single"),
    )
    t = np.arange(400) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t))[:, None].repeat(2, 1).astype(np.float32)
    sf.write(CORPUS / "pcm16.wav", tone, 8000, subtype="PCM_16")
    sf.write(CORPUS / "float.wav", tone[:, :1], 8000, subtype="FLOAT")
    sf.write(CORPUS / "pcm16.flac", tone, 8000, subtype="PCM_16")
    sf.write(CORPUS / "vorbis.ogg", np.tile(tone, (10, 1)), 8000, subtype="VORBIS")
    write_csv_seeds()


def write_csv_seeds() -> None:
    """CSV manifests for ``pcsep batch --manifest``, written with the csv module."""
    import csv

    rows = [
        ["take1.wav", "take1.ply", "take1"],
        ["sub/take2.flac", "sub/take2.las", "session/take2"],
        ["../elsewhere/Sérénade, op. 3.wav", "scans/Sérénade.e57", "Sérénade op. 3"],
    ]
    with open(CORPUS / "named.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["audio", "cloud", "name"])
        writer.writerows(rows)
    # A spreadsheet's export: BOM, CRLF, quoted cells, columns in another order, no names.
    with open(CORPUS / "excel.csv", "w", newline="", encoding="utf-8-sig") as f:
        writer = csv.writer(f, dialect="excel", quoting=csv.QUOTE_ALL)
        writer.writerow(["Cloud", "Audio"])
        writer.writerows([[c, a] for a, c, _ in rows])


if __name__ == "__main__":
    main()
