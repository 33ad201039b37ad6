"""``pcsep models remove`` on odd caches: a symlinked repository folder, mirrors that share
commits. The cache is the real layout, filled by the real client from the local Hub."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from typer.testing import CliRunner

from pcsep_cli.cli import app
from pcsep_cli.hub.download import hub_cache_dir, repo_cache_dir

runner = CliRunner()


def _tree(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a link's target, a file's bytes (hex), folders as ``/``."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[rel] = "/"
        else:
            out[rel] = path.read_bytes().hex()
    return out


def _dangling(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_symlink() and not p.exists()]


def test_a_symlinked_cache_entry_is_unlinked_and_its_target_left_whole(
    hub, make_model, as_files, tmp_path: Path
) -> None:
    sha = hub.commit("me/tiny", as_files(make_model()))
    assert runner.invoke(app, ["models", "download", "me/tiny"]).exit_code == 0
    elsewhere = tmp_path / "elsewhere" / "models--me--tiny"
    elsewhere.parent.mkdir()
    shutil.move(repo_cache_dir("me/tiny"), elsewhere)
    repo_cache_dir("me/tiny").symlink_to(elsewhere, target_is_directory=True)
    before = _tree(elsewhere)

    # A revision would be deleted inside the link's target, outside the cache: refused.
    one = runner.invoke(app, ["models", "remove", f"me/tiny@{sha}"])
    assert one.exit_code == 1, one.output
    line = one.stderr.strip()
    assert "\n" not in line and line.startswith("error: ")
    assert "is a link to" in line and "outside the cache" in line
    assert _tree(elsewhere) == before and repo_cache_dir("me/tiny").is_symlink()

    # The whole entry: the link goes, what it points to stays.
    result = runner.invoke(app, ["models", "remove", "me/tiny", "--json"])
    assert result.exit_code == 0, result.output + result.stderr
    report = json.loads(result.stdout)
    assert report["removed"] == [str(repo_cache_dir("me/tiny"))]
    assert report["freed_bytes"] == 0 and report["kept_target"] == str(elsewhere)
    assert not os.path.lexists(repo_cache_dir("me/tiny"))
    assert _tree(elsewhere) == before

    # A dangling link is a cache entry too: removed, not "not in the cache".
    repo_cache_dir("me/tiny").symlink_to(tmp_path / "gone", target_is_directory=True)
    human = runner.invoke(app, ["models", "remove", "me/tiny"])
    assert human.exit_code == 0, human.output + human.stderr
    assert f"a link to {tmp_path / 'gone'}, which is left as it was" in " ".join(
        human.stdout.split()
    )
    assert not os.path.lexists(repo_cache_dir("me/tiny"))


def test_removing_a_revision_leaves_mirrors_with_the_same_commit_alone(
    hub, make_model, as_files
) -> None:
    files = as_files(make_model())
    old = hub.commit("me/tiny", files, tags=("v1",))
    new = hub.commit("me/tiny", {**files, "README.md": b"# newer\n"})
    for rev in ("v1", "main"):
        assert runner.invoke(app, ["models", "download", f"me/tiny@{rev}"]).exit_code == 0
    # Mirrors (a duplicated repository keeps its history, so its commits): same commits.
    names = ["me/tiny", "mirror/tiny", "other/tiny"]
    for name in names[1:]:
        shutil.copytree(repo_cache_dir("me/tiny"), repo_cache_dir(name), symlinks=True)
    cache = hub_cache_dir()

    # Each repository in turn loses its old revision; the others are untouched every time.
    for name in names:
        before = {n: _tree(repo_cache_dir(n)) for n in names if n != name}
        result = runner.invoke(app, ["models", "remove", f"{name}@{old}", "--json"])
        assert result.exit_code == 0, result.output + result.stderr
        report = json.loads(result.stdout)
        assert report["removed"] == [str(repo_cache_dir(name) / "snapshots" / old)]
        assert report["freed_bytes"] > 0  # the old card's blob, used by no other revision
        assert {n: _tree(repo_cache_dir(n)) for n in before} == before
        root = repo_cache_dir(name)
        assert sorted(p.name for p in (root / "snapshots").iterdir()) == [new]
        assert not (root / "refs" / "v1").exists() and (root / "refs" / "main").exists()
        assert _dangling(root) == []
        assert (root / "snapshots" / new / "model.safetensors").is_file()  # shared blob kept

    # The last revision takes the repository folder with it; the mirrors stay.
    for name in names[:2]:
        result = runner.invoke(app, ["models", "remove", f"{name}@main"])
        assert result.exit_code == 0, result.output + result.stderr
        assert not os.path.lexists(repo_cache_dir(name))
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith("models--")) == [
        "models--other--tiny"
    ]
    assert _dangling(repo_cache_dir("other/tiny")) == []
    assert (repo_cache_dir("other/tiny") / "snapshots" / new / "config.json").is_file()
