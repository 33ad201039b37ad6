"""``pcsep models push`` through the real ``huggingface_hub`` upload API, against the local Hub.

What was pushed is downloaded again and separates byte for byte like the folder it came from;
a folder that fails the checks never reaches the server; auth and network failures are one
line with exit code 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers.audio import output_file, recording
from helpers.models import save_tiny
from helpers.training import make_dataset
from typer.testing import CliRunner

from pcsep_cli.cli import app

runner = CliRunner()

CARD = """---
license: mit
tags:
- strings
---

# tiny-duo

Trained on two captures of our string duo.
"""


def _run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def _ok(*args: str | Path) -> str:
    code, out, err = _run(*args)
    assert code == 0, out + err
    return out


def _one_line_error(*args: str | Path, code: int = 1) -> str:
    got, out, err = _run(*args)
    assert got == code, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _card(text: str) -> tuple[dict, str]:
    _, block, body = text.split("---\n", 2)
    return yaml.safe_load(block), body


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    folder = save_tiny(tmp_path / "tiny-duo")
    (folder / "README.md").write_text(CARD)
    return folder


def test_pushed_model_downloads_and_separates_like_its_folder(
    hub, tiny: Path, tmp_path: Path, scene_ply: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", hub.add_user("me"))
    (tiny / "checkpoint-last.pt").write_bytes(b"training state, not for the Hub")
    data = make_dataset(tmp_path / "data" / "test", [["cello", "flute"]], seconds=1.0)
    report = json.loads(_ok("evaluate", tiny, data, "--max-seconds", "0.5", "--json"))
    (tmp_path / "results.json").write_text(json.dumps(report))

    pushed = json.loads(
        _ok("models", "push", tiny, "me/tiny-duo", "--revision", "exp", "--json",
            "--eval", tmp_path / "results.json", "--dataset", "me/duo-captures")
    )  # fmt: skip

    repo = hub.repos["me/tiny-duo"]
    assert pushed["commit"] == repo.refs["exp"] and pushed["skipped"] == ["checkpoint-last.pt"]
    assert list(repo.commits[repo.refs["main"]]) == [".gitattributes"]  # main untouched
    files = repo.commits[repo.refs["exp"]]
    assert sorted(files) == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    for name in ("config.json", "model.safetensors"):
        assert files[name] == (tiny / name).read_bytes()
    # The weights went through LFS (PUT of the object), the rest in the commit itself.
    assert hub.count("PUT", "/lfs-objects/") == 1 and len(hub.lfs) == 1
    assert hub.history("me/tiny-duo", "exp")[0] == "Upload tiny-duo with pcsep 0.1.0"

    meta, body = _card(files["README.md"].decode())
    kept, added = body.split("\n## Evaluation\n")
    assert kept.rstrip("\n") == CARD.split("---\n", 2)[2].rstrip("\n")  # the folder's body
    assert "| SDR (dB) |" in added  # the section `pcsep models info` shows
    assert (meta["library_name"], meta["license"], meta["datasets"]) == (
        "pcsep",
        "mit",
        ["me/duo-captures"],
    )
    assert meta["tags"] == ["strings", "pcsep", "audio-source-separation", "point-cloud", "music"]
    (index,) = meta["model-index"]
    (result,) = index["results"]
    assert index["name"] == "tiny-duo" and result["task"]["type"] == "audio-source-separation"
    assert result["dataset"] == {"name": "data/test", "type": "me/duo-captures", "split": "test"}
    metrics = {m["type"]: m["value"] for m in result["metrics"]}
    assert metrics["sdr"] == round(report["overall"]["sdr"]["mean"], 2)
    assert metrics["sdri"] == round(report["overall"]["sdri"]["mean"], 2)
    assert metrics["accuracy"] == round(100 * report["classification"]["accuracy"]["mean"], 2)

    got = json.loads(_ok("models", "download", "me/tiny-duo@exp", "--json"))
    assert got["commit"] == pushed["commit"]
    info = json.loads(_ok("models", "info", "me/tiny-duo@exp", "--json"))
    assert info["evaluation"]["columns"] == ["metric", "value", "95 % interval"]
    assert info["evaluation"]["rows"][0][:2] == ["SDR (dB)", f"{metrics['sdr']:.2f}"]
    mix = recording(tmp_path / "take.wav", seed=4)
    stems = {}
    for name, ref in (("local", tiny), ("hub", "me/tiny-duo@exp")):
        out = json.loads(_ok("separate", mix, scene_ply, "--model", ref, "-o", tmp_path / name,
                             "--json"))  # fmt: skip
        stems[name] = [(s["name"], output_file(out, s).read_bytes()) for s in out["stems"]]
    assert len(stems["local"]) == 2 and stems["hub"] == stems["local"]


def test_a_second_push_adds_a_commit_and_sends_only_what_changed(
    hub, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", hub.add_user("me"))
    first = json.loads(_ok("models", "push", tiny, "me/tiny-duo", "--json"))
    (tiny / "README.md").write_text(CARD + "\nNow with a second take.\n")
    second = json.loads(_ok("models", "push", tiny, "me/tiny-duo", "-m", "card: 2nd take",
                            "--json"))  # fmt: skip

    repo = hub.repos["me/tiny-duo"]
    assert second["commit"] == repo.refs["main"] != first["commit"]
    assert hub.history("me/tiny-duo") == [
        "card: 2nd take",
        "Upload tiny-duo with pcsep 0.1.0",
        "initial commit",
    ]
    assert repo.parents[second["commit"]] == first["commit"]
    old, new = repo.commits[first["commit"]], repo.commits[second["commit"]]
    assert b"second take" in new["README.md"] and b"second take" not in old["README.md"]
    assert new["model.safetensors"] == old["model.safetensors"]
    assert hub.count("PUT", "/lfs-objects/") == 1  # the weights were not sent again
    commits = hub.count("POST", "/commit/")

    again = json.loads(_ok("models", "push", tiny, "me/tiny-duo", "--json"))
    assert again["commit"] == second["commit"]  # nothing changed: no empty commit
    assert hub.count("POST", "/commit/") == commits and len(repo.commits) == 3

    save_tiny(tiny, seed=5)  # retrained: new weights, same card
    third = json.loads(_ok("models", "push", tiny, "me/tiny-duo", "--json"))
    assert (
        repo.commits[third["commit"]]["model.safetensors"]
        == (tiny / "model.safetensors").read_bytes()
    )
    assert hub.count("PUT", "/lfs-objects/") == 2


def _broken_weights(folder: Path) -> None:
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])


def _bad_class_name(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["classes"][0] = "Violin Solo"
    (folder / "config.json").write_text(json.dumps(config))


def _pickle_only(folder: Path) -> None:
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


def _bad_card(folder: Path) -> None:
    (folder / "README.md").write_text("---\nlicense: [mit\n---\n# tiny\n")


@pytest.mark.parametrize(
    ("breakage", "said"),
    [
        (_broken_weights, "model.safetensors: tensors need"),
        (_bad_class_name, "is not a class name"),
        (_pickle_only, "holds only pickle weights"),
        (_bad_card, "README.md: the card's metadata is not valid YAML"),
    ],
)
def test_a_broken_folder_is_refused_before_any_request(
    hub, tiny: Path, monkeypatch: pytest.MonkeyPatch, breakage, said: str
) -> None:
    monkeypatch.setenv("HF_TOKEN", hub.add_user("me"))
    breakage(tiny)
    line = _one_line_error("models", "push", tiny, "me/tiny-duo")
    assert said in line, line
    assert hub.requests == [] and hub.repos == {}


def test_push_errors_name_the_fix(hub, tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line = _one_line_error("models", "push", tiny, "me/tiny-duo")
    assert "needs a token to publish (HTTP 401)" in line and "HF_TOKEN" in line, line
    assert hub.repos == {} and hub.auth_headers[0] is None

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    line = _one_line_error("models", "push", tiny, "me/tiny-duo")
    assert "refused the token (HTTP 401" in line, line

    # Someone else's repository: create_repo finds it (public), the upload gets 403.
    other = hub.commit("them/tiny-duo", {"config.json": b"{}"})
    monkeypatch.setenv("HF_TOKEN", hub.add_user("me"))
    line = _one_line_error("models", "push", tiny, "them/tiny-duo")
    assert "may not write to them/tiny-duo (HTTP 403" in line, line
    assert "your own namespace" in line
    line = _one_line_error("models", "push", tiny, "them/tiny-duo", "--revision", "mine")
    assert "may not write to them/tiny-duo (HTTP 403" in line, line
    assert hub.repos["them/tiny-duo"].refs == {"main": other}

    hub.commit("me/public", {"config.json": b"{}"})
    line = _one_line_error("models", "push", tiny, "me/public", "--private")
    assert "exists and is public" in line, line
    assert len(hub.repos["me/public"].commits) == 1

    hub.down = True
    line = _one_line_error("models", "push", tiny, "me/tiny-duo")
    assert "failed (HTTP 503" in line, line
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    line = _one_line_error("models", "push", tiny, "me/tiny-duo")
    assert "cannot reach the Hub at http://127.0.0.1:9" in line, line
    assert "me/tiny-duo" not in hub.repos

    for args, said in (
        (["me/tiny-duo@v2"], "--revision"),
        (["me/tiny-duo", "--revision", "a" * 40], "not a branch name"),
        (["not-an-id"], "not a Hub repository id"),
    ):
        line = _one_line_error("models", "push", tiny, *args, code=2)
        assert said in line, line


def test_private_push_makes_a_repository_only_its_owner_reads(
    hub, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = hub.add_user("me")
    monkeypatch.setenv("HF_TOKEN", token)
    _ok("models", "push", tiny, "me/secret", "--private")
    assert hub.repos["me/secret"].token == token
    assert _ok("models", "download", "me/secret")
    monkeypatch.delenv("HF_TOKEN")
    line = _one_line_error("models", "download", "me/secret", "--force")
    assert "no such model repository" in line and "HF_TOKEN" in line, line


def test_dry_run_checks_and_shows_the_card_without_a_request(hub, tmp_path: Path) -> None:
    folder = save_tiny(tmp_path / "bare")  # no card: one is written from the config
    shown = json.loads(_ok("models", "push", folder, "me/bare", "--revision", "v2",
                           "--license", "apache-2.0", "--dry-run", "--json"))  # fmt: skip
    meta, body = _card(shown["card"])
    assert (meta["library_name"], meta["license"]) == ("pcsep", "apache-2.0")
    assert "`violin`, `cello`, `flute`, `none`" in body
    assert "--model me/bare@v2" in body
    assert shown["commit"] is None and set(shown["files"]) == {
        "config.json",
        "model.safetensors",
        "README.md",
    }
    assert hub.requests == [] and not (folder / "README.md").exists()
