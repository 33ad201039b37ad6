"""The real huggingface_hub client against the local Hub server: download, cache, offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save

from pcsep_cli.errors import ModelError
from pcsep_cli.hub.download import fetch, hub_cache_dir, repo_cache_dir
from pcsep_cli.hub.models import resolve

CONFIG = {"classes": ["violin", "none"], "sample_rate": 11025}


def repo_files(fill: float = 1.0, side: int = 64, **extra: bytes) -> dict[str, bytes]:
    """A Hub-shaped pcsep repository: config, safetensors weights written by safetensors, card."""
    weights = save({"w": np.full((side, side), fill, np.float32), "b": np.zeros(3, np.float32)})
    return {
        "config.json": json.dumps(CONFIG).encode(),
        "model.safetensors": weights,
        "README.md": b"# tiny\n",
        **extra,
    }


def test_download_lands_in_hf_home_cache_with_only_allowed_files(hub, tmp_path: Path) -> None:
    sha = hub.commit("me/tiny", repo_files(**{"pytorch_model.bin": b"pickle", "notes.txt": b"x"}))

    resolved = resolve("me/tiny")

    assert resolved.source == "hub"
    assert (resolved.repo_id, resolved.revision, resolved.commit) == ("me/tiny", "main", sha)
    assert hub_cache_dir() == tmp_path / "hf" / "hub"
    assert resolved.path == repo_cache_dir("me/tiny") / "snapshots" / sha
    assert resolved.path.is_relative_to(tmp_path / "hf" / "hub")
    assert sorted(p.name for p in resolved.path.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    weights = load_file(resolved.path / "model.safetensors")
    np.testing.assert_array_equal(weights["w"], np.ones((64, 64), np.float32))
    assert resolved.describe() == {
        "id": "me/tiny",
        "revision": "main",
        "commit": sha,
        "source": "hub",
        "path": str(resolved.path),
    }
    assert hub.count(contains="pytorch_model.bin") == 0
    assert hub.count(contains="notes.txt") == 0


def test_commit_pinned_cache_hit_makes_no_request(hub) -> None:
    sha = hub.commit("me/tiny", repo_files())
    first = resolve(f"me/tiny@{sha}")
    before = len(hub.requests)

    again = resolve(f"me/tiny@{sha}")

    assert again.path == first.path
    assert len(hub.requests) == before


def test_branch_cache_hit_skips_file_downloads(hub) -> None:
    hub.commit("me/tiny", repo_files())
    resolve("me/tiny@main")
    downloads = hub.count("GET", "/resolve/")

    resolve("me/tiny@main")

    assert hub.count("GET", "/resolve/") == downloads
    assert hub.count("HEAD", "/resolve/") == 3


def test_unreachable_hub_falls_back_to_cache(hub, monkeypatch: pytest.MonkeyPatch) -> None:
    sha = hub.commit("me/tiny", repo_files())
    resolve("me/tiny")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there

    resolved = resolve("me/tiny")

    assert resolved.commit == sha


def test_hub_error_5xx_falls_back_to_cache_or_says_so(hub) -> None:
    sha = hub.commit("me/tiny", repo_files(), tags=("v1",))
    resolve("me/tiny")
    hub.down = True

    assert resolve("me/tiny").commit == sha
    with pytest.raises(ModelError, match=r"me/tiny@v1: not in the cache .* failed"):
        resolve("me/tiny@v1")


def test_offline_env_uses_cache_and_fails_clearly_when_absent(
    hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = hub.commit("me/tiny", repo_files())
    resolve("me/tiny")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    before = len(hub.requests)

    assert resolve("me/tiny").commit == sha
    assert resolve(f"me/tiny@{sha}").commit == sha
    with pytest.raises(ModelError) as err:
        resolve("me/other")
    assert len(hub.requests) == before
    text = str(err.value)
    assert "me/other@main: not in the cache" in text
    assert "HF_HUB_OFFLINE=1" in text
    assert "pcsep models download me/other@main" in text
    assert "\n" not in text


def test_offline_flag_overrides_online_env(hub) -> None:
    hub.commit("me/tiny", repo_files())
    with pytest.raises(ModelError, match="offline mode is on"):
        resolve("me/tiny", offline=True)
    assert hub.requests == []


def test_revision_pinning_branch_moves_commit_and_tag_stay(hub) -> None:
    old = hub.commit("me/tiny", repo_files(fill=1.0), tags=("v1",))
    pinned_old = resolve(f"me/tiny@{old}")
    new = hub.commit("me/tiny", repo_files(fill=2.0))

    by_branch = resolve("me/tiny@main")
    by_tag = resolve("me/tiny@v1")
    by_commit = resolve(f"me/tiny@{old}")

    assert by_branch.commit == new != old
    assert by_tag.commit == old and by_commit.commit == old
    assert by_commit.path == pinned_old.path
    assert load_file(by_branch.path / "model.safetensors")["w"][0, 0] == 2.0
    assert load_file(by_tag.path / "model.safetensors")["w"][0, 0] == 1.0
    assert (by_tag.revision, by_commit.revision) == ("v1", old)


def test_offline_branch_resolves_to_last_downloaded_commit(
    hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = hub.commit("me/tiny", repo_files(fill=1.0))
    resolve("me/tiny")
    hub.commit("me/tiny", repo_files(fill=2.0))  # not downloaded
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    assert resolve("me/tiny@main").commit == old


def test_connection_dropped_once_resumes_with_a_range_request(hub) -> None:
    # 27 MB: past the client's 10 MiB read chunk, so it keeps part of the body and resumes.
    files = repo_files(fill=3.0, side=2600)
    hub.commit("me/tiny", files)
    hub.drop("model.safetensors", times=1)

    resolved = resolve("me/tiny")

    assert hub.count("GET", "model.safetensors") == 2
    assert len(hub.ranges) == 1
    resumed_at = int(hub.ranges[0].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(files["model.safetensors"]) // 2
    assert (resolved.path / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert load_file(resolved.path / "model.safetensors")["w"][5, 5] == 3.0


def test_connection_dropped_past_retries_leaves_no_corrupt_entry(
    hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = hub.commit("me/tiny", repo_files(fill=4.0))
    hub.drop("model.safetensors", times=50)

    with pytest.raises(ModelError, match="download did not finish") as err:
        resolve("me/tiny")
    assert "run `pcsep models download me/tiny@main` again" in str(err.value)
    root = repo_cache_dir("me/tiny")
    assert not (root / "snapshots" / sha / "model.safetensors").exists()
    assert not list(root.rglob("*.incomplete"))
    weights_size = len(repo_files()["model.safetensors"])
    assert all(p.stat().st_size != weights_size for p in (root / "blobs").iterdir())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="only partly downloaded"):
        resolve("me/tiny")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    hub.drop("model.safetensors", times=0)
    resolved = resolve("me/tiny")

    assert load_file(resolved.path / "model.safetensors")["w"][1, 1] == 4.0


def test_pickle_only_repository_is_refused_before_any_download(hub) -> None:
    files = repo_files(**{"pytorch_model.bin": b"\x80\x04pickle"})
    del files["model.safetensors"]
    hub.commit("me/pickled", files)

    with pytest.raises(ModelError) as err:
        resolve("me/pickled")

    text = str(err.value)
    assert "holds only pickle weights (pytorch_model.bin)" in text
    assert "never loads pickle" in text
    assert hub.count(contains="/resolve/") == 0
    assert not repo_cache_dir("me/pickled").exists()


@pytest.mark.parametrize(
    "name",
    ["../evil.safetensors", "sub/model.safetensors", "a\\b.safetensors", "x/../config.json"],
)
def test_repository_file_names_with_separators_are_refused(hub, name: str) -> None:
    hub.commit("me/hostile", repo_files(**{name: b"x"}))

    with pytest.raises(ModelError, match="file name"):
        resolve("me/hostile")
    assert hub.count(contains="/resolve/") == 0


def test_repository_without_config_is_refused(hub) -> None:
    files = repo_files()
    del files["config.json"]
    hub.commit("me/noconfig", files)

    with pytest.raises(ModelError, match="no config.json"):
        resolve("me/noconfig")


def test_unknown_repository_and_revision_name_what_is_missing(hub) -> None:
    hub.commit("me/tiny", repo_files())

    with pytest.raises(ModelError, match="me/nope@main: no such model repository"):
        resolve("me/nope")
    with pytest.raises(ModelError, match="revision 'v9' does not exist in me/tiny"):
        resolve("me/tiny@v9")


def test_private_repository_needs_hf_token(hub, monkeypatch: pytest.MonkeyPatch) -> None:
    hub.commit("me/secret", repo_files(), token="hf_test_token")

    with pytest.raises(ModelError, match="set HF_TOKEN"):
        resolve("me/secret")
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    resolved = resolve("me/secret")

    assert (resolved.path / "model.safetensors").is_file()
    assert "Bearer hf_test_token" in hub.auth_headers


def test_force_download_fetches_again(hub) -> None:
    sha = hub.commit("me/tiny", repo_files())
    path, commit = fetch("me/tiny", None)
    downloads = hub.count("GET", "model.safetensors")

    path2, commit2 = fetch("me/tiny", sha, force=True)

    assert (path2, commit2) == (path, commit)
    assert hub.count("GET", "model.safetensors") == downloads + 1
