"""The cluster examples of examples/cluster/, run as far as a machine without SLURM or
Kubernetes allows.

For every array task / pod index, the shell that SLURM or the pod would start (bash for the
script, ``/bin/sh -c`` for the Job's container) expands the example's own command line with
the variable the scheduler sets (``SLURM_ARRAY_TASK_ID``, ``JOB_COMPLETION_INDEX``); ``printf``
stands where ``pcsep`` is so the shell shows the arguments it would pass, and those arguments
then run through pcsep's app, in this process (a process per index would cost 5 s each).
Together the shards must separate every recording of a 3-item folder exactly once. Then each
example runs for real, the whole script or container command in a shell with ``pcsep`` on the
PATH, for index 0, whose item it finds finished.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.batch import folder_of
from typer.testing import CliRunner

from pcsep_cli.cli import app

CLUSTER = Path(__file__).resolve().parents[1] / "examples" / "cluster"
SBATCH = CLUSTER / "pcsep-array.sbatch"
JOB = CLUSTER / "pcsep-indexed-job.yaml"
NAMES = "abc"
runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCSEP_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PCSEP_MODEL", raising=False)


def _as_printf(command: str) -> str:
    """The command with its one ``pcsep`` (at the start of a line) replaced by printf."""
    swapped, count = re.subn(r"^(\s*)pcsep ", r"\1printf '%s\\n' ", command, flags=re.M)
    assert count == 1, command
    return swapped


def _expanded(shell: list[str], env: dict[str, str]) -> list[str]:
    """The arguments ``pcsep`` gets when ``shell`` runs (after :func:`_as_printf`)."""
    proc = subprocess.run(shell, env={**os.environ, **env}, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def _separated(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run ``pcsep ARGV`` in this process with ``env``; the items it separated."""
    with monkeypatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output + result.stderr
    items = json.loads(result.stdout)["items"]
    assert all(item["status"] == "done" for item in items), items
    return [item["name"] for item in items]


def _pcsep_on_path(tmp_path: Path) -> dict[str, str]:
    """``PATH`` with a ``pcsep`` that runs this checkout's CLI with this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "pcsep"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pcsep_cli.cli "$@"\n')
    launcher.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _finished_by_task_zero(proc: subprocess.CompletedProcess, count: int) -> None:
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["shard"] == f"0/{count}"
    assert [(i["name"], i["status"]) for i in summary["items"]] == [("a", "skipped")]


def test_slurm_array_script_shards_cover_every_item_once(
    tmp_path: Path, model: Path, scene_ply: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = SBATCH.read_text()
    syntax = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash"
    # sbatch reads #SBATCH lines only above the first command.
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    directives = [line.split()[1] for line in lines[:first_command] if line.startswith("#SBATCH")]
    assert not any(line.startswith("#SBATCH") for line in lines[first_command:])
    (array,) = [d for d in directives if d.startswith("--array=")]
    first, last = map(int, array.removeprefix("--array=").split("-"))
    tasks = range(first, last + 1)

    data = folder_of(tmp_path / "recordings", scene_ply, NAMES)
    env = {"PCSEP_INPUT": str(data), "PCSEP_OUTPUT": str(tmp_path / "separated")}
    env["PCSEP_MODEL"] = str(model)
    done = []
    for task in tasks:
        shell = ["bash", "-c", _as_printf(text), "pcsep-array.sbatch", "--json"]
        argv = _expanded(shell, {**env, "SLURM_ARRAY_TASK_ID": str(task)})
        assert argv[:4] == ["batch", str(data), "-o", env["PCSEP_OUTPUT"]], argv
        assert argv[argv.index("--shard") + 1] == f"{task}/{len(tasks)}"
        done += _separated(argv, env, monkeypatch)
    assert sorted(done) == list(NAMES)  # every item, none twice
    for name in NAMES:
        assert (tmp_path / "separated" / name / "manifest.json").is_file()

    proc = subprocess.run(
        ["bash", str(SBATCH), "--json"],
        env={**os.environ, **env, **_pcsep_on_path(tmp_path), "SLURM_ARRAY_TASK_ID": "0"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    _finished_by_task_zero(proc, len(tasks))


def test_kubernetes_indexed_job_shards_cover_every_item_once(
    tmp_path: Path, model: Path, scene_ply: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = yaml.safe_load(JOB.read_text())
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    count = spec["completions"]
    assert spec["parallelism"] == count
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # what backoffLimitPerIndex needs
    (container,) = pod["containers"]
    assert container["command"] == ["/bin/sh", "-c"]
    (command,) = container["args"]
    (mount,) = container["volumeMounts"]
    assert [v["name"] for v in pod["volumes"]] == [mount["name"]]

    # The volume is a folder here: values under its mount path point into it.
    volume = tmp_path / "volume"
    env = {e["name"]: str(e["value"]) for e in container["env"]}
    env = {k: v.replace(mount["mountPath"], str(volume), 1) for k, v in env.items()}
    env["PCSEP_MODEL"] = str(model)  # the Job names pcsep-base; the tests use a tiny model
    data = folder_of(Path(env["PCSEP_INPUT"]), scene_ply, NAMES)
    done = []
    for index in range(count):
        shell = ["/bin/sh", "-c", _as_printf(command)]
        argv = _expanded(shell, {**env, "JOB_COMPLETION_INDEX": str(index)})
        assert argv[:4] == ["batch", str(data), "-o", env["PCSEP_OUTPUT"]], argv
        assert argv[argv.index("--shard") + 1] == f"{index}/{count}"
        done += _separated(argv, env, monkeypatch)
    assert sorted(done) == list(NAMES)

    proc = subprocess.run(
        ["/bin/sh", "-c", command],
        env={**os.environ, **env, **_pcsep_on_path(tmp_path), "JOB_COMPLETION_INDEX": "0"},
        capture_output=True,
        text=True,
    )
    _finished_by_task_zero(proc, count)


def _readme_block(language: str, marker: str) -> str:
    readme = (CLUSTER.parents[1] / "README.md").read_text()
    blocks = re.findall(rf"```{language}\n(.*?)```", readme, flags=re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


def test_the_readme_shows_the_examples_as_they_are() -> None:
    script = [line for line in SBATCH.read_text().splitlines() if not line.startswith("# ")]
    script = [line for line in script if line != "#"]
    assert _readme_block("bash", "#SBATCH --array").splitlines() == script
    shown = yaml.safe_load(_readme_block("yaml", "completionMode"))
    assert shown == yaml.safe_load(JOB.read_text())
