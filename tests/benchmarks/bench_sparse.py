"""Sparse conv speed: pcsep vs spconv 2.3.8 on the CPU, and the visual encoder's train step.

Workload (issue 3): a submanifold 3×3×3 conv, 32 → 32 channels, on ~50,000 voxels of
surface points at 1 cm (a seated performer with a cello and a chair, sampled from a trimesh
mesh). Forward time with the kernel map built inside the timed call ("map + conv") and with
it cached, pcsep at 1 and 2 threads beside spconv 2.3.8 at 1 thread (the only setting in
which its CPU build is correct, spconv issue 679). Target: pcsep at 2 threads no slower than
spconv at 1 thread on map + conv, with the same outputs.

spconv is no pcsep dependency: it lives in its own virtualenv (``~/.cache/pcsep-bench/
spconv``, created on first use with ``pip install torch==2.13.0 spconv==2.3.8``) and runs in
a subprocess; coords, features and weights go over ``.npy`` files. pcsep and spconv blocks
alternate for ``--rounds`` rounds so that load from other processes hits both alike.

Second target: the :class:`~pcsep_cli.nets.visual.VisualEncoder` (default config) trains
(voxelize + forward + backward + SGD step) on 8 clouds of 20,000 points in < 1 s per step.

Prints a table of medians and exits 1 if a target is missed. A BatchNorm1d timed at 1 and 2
threads before and after tells whether other processes held the cores (a plain op slower on
2 threads than on 1): the 2-thread figures then measure the scheduler, and the targets are
judged on 1-thread CPU time (process time, barely changed by other processes), which is
stricter than the 2-thread wall time they stand for.

Usage: ``.venv/bin/python tests/benchmarks/bench_sparse.py [--runs K] [--rounds R]
[--no-spconv]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import trimesh

from pcsep_cli.nets.visual import VisualConfig, VisualEncoder, cloud_to_sparse
from pcsep_cli.sparse import SparseTensor, conv3d, voxelize

SPCONV_ENV = Path.home() / ".cache" / "pcsep-bench" / "spconv"
SPCONV_REQS = ["torch==2.13.0", "spconv==2.3.8"]
TARGET_STEP_S = 1.0
TARGET_DIFF = 1e-4

# Runs inside spconv's own venv. argv: workdir threads runs mode ("time" or "check").
SPCONV_RUNNER = r"""
import json, sys, time
import numpy as np, torch, spconv.pytorch as spconv
work, threads, runs, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
c = torch.from_numpy(np.load(f"{work}/coords.npy"))
f = torch.from_numpy(np.load(f"{work}/feats.npy"))
w = torch.from_numpy(np.load(f"{work}/weight.npy"))   # pcsep layout [27, Cin, Cout]
shape = (c[:, 1:].max(0).values + 1).tolist()
conv = spconv.SubMConv3d(w.shape[1], w.shape[2], 3, bias=False, indice_key="k")
with torch.no_grad():  # spconv: [Cout, kx, ky, kz, Cin] for indices (b, x, y, z)
    conv.weight.copy_(w.view(3, 3, 3, w.shape[1], w.shape[2]).permute(4, 2, 1, 0, 3))
    def fresh():
        return conv(spconv.SparseConvTensor(f, c, shape, 1))
    out = fresh()
    if mode == "check":
        np.save(f"{work}/spconv_out_{threads}.npy", out.features.numpy())
        np.save(f"{work}/spconv_idx_{threads}.npy", out.indices.numpy())
        sys.exit(0)
    res = {"built": [], "cached": [], "built_cpu": [], "cached_cpu": []}
    for key, call in (("built", fresh), ("cached", lambda: conv(out.replace_feature(f)))):
        for _ in range(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            res[key].append(time.perf_counter() - wall)
            res[key + "_cpu"].append(time.process_time() - cpu)
print(json.dumps(res))
"""


def performer_mesh() -> trimesh.Trimesh:
    """A seated cellist, chair and cello from primitives (metres, z up)."""
    parts = []
    rot = trimesh.transformations.rotation_matrix

    def add(mesh: trimesh.Trimesh, pos: tuple[float, float, float], tf=None) -> None:
        if tf is not None:
            mesh.apply_transform(tf)
        parts.append(mesh.apply_translation(pos))

    add(trimesh.creation.icosphere(subdivisions=3, radius=0.11), (0, 0, 1.3))
    add(trimesh.creation.capsule(height=0.45, radius=0.16), (0, 0, 0.88))
    for s in (-1, 1):
        add(
            trimesh.creation.capsule(height=0.4, radius=0.075),
            (s * 0.11, 0.22, 0.5),
            rot(1.5, [1, 0, 0]),
        )
        add(trimesh.creation.capsule(height=0.42, radius=0.06), (s * 0.12, 0.42, 0.24))
        add(
            trimesh.creation.capsule(height=0.55, radius=0.045),
            (s * 0.24, 0.15, 0.95),
            rot(0.7 * s, [0, 1, 0]),
        )
    body = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    body.apply_scale((0.22, 0.12, 0.38))
    add(body, (0, 0.5, 0.55), rot(0.25, [1, 0, 0]))
    add(trimesh.creation.cylinder(radius=0.025, height=0.7), (0, 0.42, 1.05), rot(0.25, [1, 0, 0]))
    add(trimesh.creation.box((0.45, 0.45, 0.04)), (0, 0.0, 0.45))
    add(trimesh.creation.box((0.45, 0.04, 0.45)), (0, -0.22, 0.7))
    for sx in (-1, 1):
        for sy in (-1, 1):
            add(trimesh.creation.cylinder(radius=0.015, height=0.45), (sx * 0.2, sy * 0.2, 0.22))
    return trimesh.util.concatenate(parts)


def surface_points(n: int, seed: int, mesh: trimesh.Trimesh) -> np.ndarray:
    pts, _ = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return np.asarray(pts, dtype=np.float64)


def median_ms(xs: list[float]) -> float:
    return 1000 * statistics.median(xs)


def time_pcsep(coords: torch.Tensor, feats: torch.Tensor, w: torch.Tensor, runs: int) -> dict:
    """Wall and CPU seconds of map + conv ("built") and of the conv alone ("cached")."""
    res: dict[str, list[float]] = {"built": [], "cached": [], "built_cpu": [], "cached_cpu": []}
    with torch.inference_mode():
        conv3d(SparseTensor(coords, feats), w, 3)  # warm up (workspace, allocator)
        x = SparseTensor(coords, feats)
        conv3d(x, w, 3)
        calls = (
            ("built", lambda: conv3d(SparseTensor(coords, feats), w, 3)),
            ("cached", lambda: conv3d(x, w, 3)),
        )
        for key, call in calls:
            for _ in range(runs):
                t, c = time.perf_counter(), time.process_time()
                call()
                res[key].append(time.perf_counter() - t)
                res[key + "_cpu"].append(time.process_time() - c)
    return res


def spconv_python() -> Path | None:
    """The spconv venv's interpreter, created on first use; None if it cannot be made."""
    py = SPCONV_ENV / "bin" / "python"
    if py.exists():
        return py
    print(f"creating {SPCONV_ENV} ({' '.join(SPCONV_REQS)}) ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(SPCONV_ENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *SPCONV_REQS], check=True)
    except subprocess.CalledProcessError as err:
        print(f"spconv environment failed: {err}", file=sys.stderr)
        return None
    return py


def run_spconv(py: Path, work: Path, threads: int, runs: int, mode: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run(
        [str(py), str(work / "runner.py"), str(work), str(threads), str(runs), mode],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"spconv runner failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]) if mode == "time" else {}


def encoder_step(runs: int, threads: int) -> tuple[float, float, int]:
    """Median wall and CPU seconds of one training step on 8 × 20,000 points, and voxels."""
    torch.set_num_threads(threads)
    cfg = VisualConfig()
    torch.manual_seed(0)
    net = VisualEncoder(cfg)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    mesh = performer_mesh()
    rng = np.random.default_rng(0)
    clouds = []
    for i in range(8):
        p = surface_points(20_000, 100 + i, mesh)
        a = rng.uniform(0, 2 * np.pi)
        r = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
        clouds.append(p @ r.T * rng.uniform(0.9, 1.1))
    labels = torch.arange(8) % cfg.num_classes
    times, cpu, voxels = [], [], 0
    for i in range(runs + 1):
        t, c = time.perf_counter(), time.process_time()
        x = cloud_to_sparse(clouds, cfg.voxel_size)
        _, logits = net(x)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first step pays one-off allocations
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        voxels = x.num_points
    return statistics.median(times), statistics.median(cpu), voxels


def machine_check() -> dict[int, float]:
    """Median ms of a plain BatchNorm1d on [69000, 16] at 1 and 2 threads.

    Any torch op should run at 2 threads at least as fast as at 1; when other processes hold
    the cores, each parallel region waits for a descheduled worker and 2 threads collapse
    (seen here: 1 ms at 1 thread, 100 ms at 2). This row says which case a run was in.
    """
    x, bn, out = torch.randn(69_000, 16), torch.nn.BatchNorm1d(16), {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        times = []
        for _ in range(21):
            t = time.perf_counter()
            bn(x)
            times.append(time.perf_counter() - t)
        out[threads] = median_ms(times)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="pcsep/spconv alternations")
    parser.add_argument("--no-spconv", action="store_true", help="skip the spconv side")
    args = parser.parse_args()

    mesh = performer_mesh()
    pts = torch.from_numpy(surface_points(1_500_000, 0, mesh))
    coords = voxelize(pts, 0.01).coords
    coords[:, 1:] -= coords[:, 1:].min(0).values  # spconv wants a non-negative grid
    n = coords.shape[0]
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(n, 32, generator=g)
    w = torch.randn(27, 32, 32, generator=g) / (27 * 32) ** 0.5

    py = None if args.no_spconv else spconv_python()
    checks = [machine_check()]
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="pcsep-bench-") as tmp:
        work = Path(tmp)
        np.save(work / "coords.npy", coords.numpy())
        np.save(work / "feats.npy", feats.numpy())
        np.save(work / "weight.npy", w.numpy())
        (work / "runner.py").write_text(SPCONV_RUNNER)
        for _ in range(args.rounds):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                r = time_pcsep(coords, feats, w, args.runs)
                for key, vals in r.items():
                    results.setdefault(f"pcsep {threads}t", {}).setdefault(key, []).extend(vals)
            if py is not None:
                r = run_spconv(py, work, 1, args.runs, "time")
                for key, vals in r.items():
                    results.setdefault("spconv 1t", {}).setdefault(key, []).extend(vals)

        diffs: dict[str, float] = {}
        with torch.inference_mode():
            torch.set_num_threads(1)
            ref1 = conv3d(SparseTensor(coords, feats), w, 3).feats
            torch.set_num_threads(2)
            ref2 = conv3d(SparseTensor(coords, feats), w, 3).feats
        diffs["pcsep 2t"] = float((ref2 - ref1).abs().max())
        if py is not None:
            for threads in (1, 2):
                run_spconv(py, work, threads, 1, "check")
                idx = np.load(work / f"spconv_idx_{threads}.npy")
                assert np.array_equal(idx, coords.numpy()), "spconv reordered the voxels"
                out = np.load(work / f"spconv_out_{threads}.npy")
                diffs[f"spconv {threads}t"] = float(np.abs(out - ref1.numpy()).max())

    step_2t, _, voxels = encoder_step(5, 2)
    step_1t, step_1t_cpu, _ = encoder_step(3, 1)
    checks.append(machine_check())
    # If a plain op is slower on 2 threads than on 1, other processes hold the cores and the
    # 2-thread figures measure the scheduler; the targets are then judged at 1 thread.
    contended = any(c[2] > c[1] for c in checks)

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    bn = "; ".join(f"{c[1]:.2f} ms at 1 thread, {c[2]:.2f} ms at 2" for c in checks)
    print(f"\n{os.cpu_count()} CPUs, load average {load}")
    print(f"machine check, BatchNorm1d on [69000, 16] before/after: {bn}")
    if contended:
        print("-> cores shared with other processes: targets judged on 1-thread CPU time")
    print(f"submanifold 3x3x3 conv, 32 -> 32 channels, {n} voxels (1 cm), medians in ms")
    print("(cpu: process CPU time, which load from other processes barely changes at 1 thread)")
    head = f"{'engine':<12}{'map + conv':>12}{'cached map':>12}{'cpu m + c':>11}{'cpu cached':>11}"
    print(head + f"{'max |diff|':>12}")
    for name, r in results.items():
        diff = diffs.get(name)
        diff_s = "reference" if name == "pcsep 1t" else f"{diff:.2e}"
        cpu = name.endswith("1t")
        print(
            f"{name:<12}{median_ms(r['built']):>12.1f}{median_ms(r['cached']):>12.1f}"
            f"{median_ms(r['built_cpu']) if cpu else float('nan'):>11.1f}"
            f"{median_ms(r['cached_cpu']) if cpu else float('nan'):>11.1f}{diff_s:>12}"
        )
    if "spconv 2t" in diffs:
        print(f"{'spconv 2t':<12}{'':>46}{diffs['spconv 2t']:>12.2e}  (issue 679)")
    ok = True
    if "spconv 1t" in results:
        sp = results["spconv 1t"]
        ratios = {
            "pcsep 2t": median_ms(results["pcsep 2t"]["built"]) / median_ms(sp["built"]),
            "pcsep 1t": median_ms(results["pcsep 1t"]["built"]) / median_ms(sp["built"]),
            "pcsep 1t cpu": median_ms(results["pcsep 1t"]["built_cpu"])
            / median_ms(sp["built_cpu"]),
        }
        print(
            "map + conv vs spconv 1t (target <= 1): "
            + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items())
        )
        judged = ratios["pcsep 1t cpu" if contended else "pcsep 2t"]
        ok &= judged <= 1.0 and diffs["spconv 1t"] <= TARGET_DIFF
    print(
        f"\nVisualEncoder train step, 8 clouds x 20,000 points ({voxels} voxels at "
        f"{VisualConfig().voxel_size} m): {step_2t:.3f} s at 2 threads, {step_1t:.3f} s at 1 "
        f"({step_1t_cpu:.3f} s CPU) (target < {TARGET_STEP_S} s)"
    )
    ok &= (step_1t_cpu if contended else step_2t) < TARGET_STEP_S
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
