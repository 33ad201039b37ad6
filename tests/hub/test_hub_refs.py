"""Model references, the bundled-model registry and the persisted default model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from pcsep_cli.errors import ModelError, PcsepError
from pcsep_cli.hub import models as hub
from pcsep_cli.hub.models import ModelRef, ResolvedModel, bundled_models, parse_ref, resolve
from pcsep_cli.hub.userconfig import (
    default_model,
    save_default_model,
    settings_path,
    write_settings,
)


def plain_model(directory: Path, fill: float = 0.0) -> Path:
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"classes": ["none"], "sample_rate": 8000}))
    save_file({"w": np.full(4, fill, np.float32)}, str(directory / "model.safetensors"))
    return directory


def test_reference_kinds(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain_model(isolated_env / "bundled" / "pcsep-small")
    local = plain_model(isolated_env / "mine")
    monkeypatch.chdir(isolated_env)

    assert parse_ref("pcsep-small") == ModelRef("bundled", "pcsep-small")
    assert parse_ref(str(local)) == ModelRef("local", str(local))
    assert parse_ref("./mine") == ModelRef("local", str(local))
    assert parse_ref("owner/name") == ModelRef("hub", "owner/name")
    assert parse_ref("owner/name@v1.0") == ModelRef("hub", "owner/name", "v1.0")
    assert parse_ref("owner/name@refs/pr/3") == ModelRef("hub", "owner/name", "refs/pr/3")
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert str(parse_ref(f"o/n@{sha}")) == f"o/n@{sha}"


def test_an_existing_directory_wins_over_a_hub_id(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain_model(isolated_env / "owner" / "name")
    monkeypatch.chdir(isolated_env)

    assert parse_ref("owner/name") == ModelRef("local", str(isolated_env / "owner" / "name"))


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("", "empty model reference"),
        ("pcsep-nope", "unknown model 'pcsep-nope'"),
        ("./missing", "model directory not found"),
        ("/no/such/dir", "model directory not found"),
        ("a/b/c", "model directory not found"),
        ("own er/name", "is not a Hub id"),
        ("owner/na--me", "is not a Hub id"),
        ("owner/name@", "is not a Hub id"),
        ("owner/name@../../etc", "is not a branch, tag or commit"),
    ],
)
def test_bad_references_say_what_to_write(ref: str, message: str) -> None:
    with pytest.raises(ModelError, match=message) as err:
        parse_ref(ref)
    assert "owner/name[@rev]" in str(err.value)


def test_bundled_registry_holds_any_number_of_models_and_env_dir_comes_first(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain_model(isolated_env / "bundled" / "pcsep-base")
    plain_model(isolated_env / "bundled" / "pcsep-small")
    (isolated_env / "bundled" / "not-a-model").mkdir()

    found = bundled_models()

    assert found["pcsep-base"] == isolated_env / "bundled" / "pcsep-base"
    assert found["pcsep-small"] == isolated_env / "bundled" / "pcsep-small"
    assert "not-a-model" not in found
    assert hub.bundled_models_dir() == isolated_env / "bundled"
    package = Path(hub.__file__).resolve().parents[1]  # pcsep_cli/
    dirs = hub.bundled_models_dirs()
    assert dirs[0] == isolated_env / "bundled"
    # Source checkout: the top-level models/ folder is searched after the package's own.
    if (package.parent / "models").is_dir():
        assert dirs[-1] == package.parent / "models"


def test_resolve_bundled_and_local(isolated_env: Path) -> None:
    plain_model(isolated_env / "bundled" / "pcsep-small")
    local = plain_model(isolated_env / "mine")

    bundled = resolve("pcsep-small")
    mine = resolve(str(local))

    assert bundled == ResolvedModel(
        isolated_env / "bundled" / "pcsep-small", "pcsep-small", None, None, None, "bundled"
    )
    assert bundled.describe()["id"] == "pcsep-small"
    assert mine.describe() == {
        "id": str(local),
        "revision": None,
        "commit": None,
        "source": "local",
        "path": str(local),
    }
    assert hub.describe(mine) == mine.describe()
    with pytest.raises(ValueError, match="was not loaded by pcsep_cli.hub.load_model"):
        hub.describe(object())


def test_default_model_order_env_then_saved_then_builtin(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert default_model() == ("pcsep-base", "builtin")

    path = save_default_model("me/tiny@v1")
    assert path == isolated_env / "config" / "config.json" == settings_path()
    assert json.loads(path.read_text()) == {"model": "me/tiny@v1"}
    assert default_model() == ("me/tiny@v1", "config")

    monkeypatch.setenv("PCSEP_MODEL", "pcsep-small")
    assert default_model() == ("pcsep-small", "env")

    monkeypatch.delenv("PCSEP_MODEL")
    write_settings({})
    assert default_model() == ("pcsep-base", "builtin")


def test_resolve_without_a_reference_uses_the_default(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain_model(isolated_env / "bundled" / "pcsep-base")
    plain_model(isolated_env / "bundled" / "pcsep-small")

    assert resolve().ref == "pcsep-base"
    save_default_model("pcsep-small")
    assert resolve().path.name == "pcsep-small"
    monkeypatch.setenv("PCSEP_MODEL", "pcsep-base")
    assert resolve().path.name == "pcsep-base"


def test_corrupt_settings_file_is_a_one_line_error(isolated_env: Path) -> None:
    settings_path().parent.mkdir(parents=True)
    settings_path().write_text("{not json")

    with pytest.raises(PcsepError, match="settings are not valid JSON") as err:
        default_model()
    assert str(settings_path()) in str(err.value)


def test_an_unusable_default_says_where_it_was_set(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCSEP_MODEL", "pcsep-gone")
    with pytest.raises(ModelError, match="default model set by PCSEP_MODEL is unusable"):
        resolve()
    monkeypatch.delenv("PCSEP_MODEL")
    save_default_model(str(isolated_env / "deleted"))
    with pytest.raises(ModelError, match=r"set by `pcsep models use` is unusable: model dir"):
        resolve()
