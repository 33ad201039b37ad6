"""Hub downloads and the local cache, through ``huggingface_hub``.

The environment is read when a function runs, not when ``huggingface_hub`` is imported
(its ``constants`` module reads it once, at import): ``HF_ENDPOINT``, ``HF_TOKEN``,
``HF_HOME`` / ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` are passed to every call explicitly,
so a test or a ``--offline`` flag that sets them late is still honoured.

A download asks the Hub which commit the revision points to and which files that commit
holds, refuses unsafe or pickle-only repositories (:mod:`pcsep_cli.hub.safety`), then lets
``snapshot_download`` fetch ``config.json``, ``*.safetensors`` and ``README.md`` into the
standard cache (``$HF_HOME/hub/models--owner--name``). Files land under their final name only
once complete, so an interrupted download leaves no corrupt entry: running it again resumes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pcsep_cli.errors import ModelError
from pcsep_cli.hub.safety import ALLOW_PATTERNS, check_repo_files
from pcsep_cli.nets.files import CONFIG_FILE, WEIGHTS_FILE

COMMIT_RE = re.compile(r"[0-9a-f]{40}")
DEFAULT_REVISION = "main"
_TRUE = {"1", "on", "yes", "true"}


def hub_cache_dir() -> Path:
    """Where Hub downloads are cached: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``.

    ``HF_HOME`` defaults to ``$XDG_CACHE_HOME/huggingface`` then ``~/.cache/huggingface``,
    as in ``huggingface_hub``.
    """
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME")
    if not home:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        home = os.path.join(xdg, "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def is_offline(offline: bool | None = None) -> bool:
    """Whether the Hub must not be contacted: ``offline`` if given, else ``HF_HUB_OFFLINE``."""
    if offline is not None:
        return offline
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def set_offline() -> None:
    """Turn offline mode on for this process (what ``--offline`` does).

    Sets ``HF_HUB_OFFLINE=1`` so that ``huggingface_hub``, imported lazily after this, starts
    offline too; pcsep's own calls read it at call time.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"


def endpoint() -> str:
    """The Hub's address: ``HF_ENDPOINT`` or ``https://huggingface.co``."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _token() -> str | None:
    # None lets huggingface_hub fall back to the token saved by `hf auth login`.
    return os.environ.get("HF_TOKEN") or None


def repo_cache_dir(repo_id: str) -> Path:
    """The cache folder of one model repository (``models--owner--name``)."""
    return hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def cached_commit(repo_id: str, revision: str) -> str | None:
    """Commit a revision pointed to when it was last downloaded, or ``None``."""
    if COMMIT_RE.fullmatch(revision):
        return revision
    ref = repo_cache_dir(repo_id) / "refs" / revision
    try:
        text = ref.read_text().strip()
    except OSError:
        return None
    return text if COMMIT_RE.fullmatch(text) else None


def fetch(
    repo_id: str, revision: str | None, *, offline: bool = False, force: bool = False
) -> tuple[Path, str]:
    """Return a complete local snapshot of ``repo_id@revision``, downloading it if needed.

    Online, the Hub is asked which commit ``revision`` (branch, tag or commit hash) is; a
    commit hash already cached is used without any request. When the Hub cannot be reached,
    the cached snapshot of that revision is used.

    Args:
        repo_id: ``owner/name``.
        revision: branch, tag or 40-hex commit; ``None`` means ``main``.
        offline: use the cache only.
        force: download again even when cached.

    Returns:
        (snapshot directory, commit hash).

    Raises:
        ModelError: unknown repository or revision, unsafe or pickle-only repository, an
            interrupted download, or (offline / unreachable Hub) a revision not in the cache.
    """
    rev = revision or DEFAULT_REVISION
    if offline:
        return _from_cache(repo_id, rev, "offline mode is on (HF_HUB_OFFLINE=1 or --offline)")
    if not force and COMMIT_RE.fullmatch(rev):
        cached = _complete_snapshot(repo_id, rev)
        if cached is not None:
            return cached, rev
    import httpx2
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    where = f"{repo_id}@{rev}"
    api = HfApi(endpoint=endpoint(), token=_token())
    try:
        info = api.model_info(repo_id, revision=rev, files_metadata=True)
    except HfHubHTTPError as err:
        if _status(err) >= 500:
            return _from_cache(repo_id, rev, f"the Hub at {endpoint()} failed ({_short(err)})")
        raise _http_error(err, repo_id, rev) from None
    except (httpx2.TransportError, OSError) as err:
        return _from_cache(repo_id, rev, f"the Hub at {endpoint()} cannot be reached ({err})")
    commit = str(info.sha or "")
    if not COMMIT_RE.fullmatch(commit):
        raise ModelError(f"the Hub returned no commit for {where}", endpoint())
    wanted = check_repo_files([s.rfilename for s in info.siblings or []], where)
    if not force and cached_commit(repo_id, rev) == commit:
        cached = _complete_snapshot(repo_id, commit)
        if cached is not None:
            return cached, commit
    path = _snapshot(repo_id, rev, wanted, force)
    _require_complete(path, where)
    return path, path.name


def _snapshot(repo_id: str, rev: str, wanted: list[str], force: bool) -> Path:
    import httpx2
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    where = f"{repo_id}@{rev}"
    try:
        path = snapshot_download(
            repo_id,
            revision=rev,
            cache_dir=hub_cache_dir(),
            endpoint=endpoint(),
            token=_token(),
            # Exact names, not globs: only the files checked above can be fetched.
            allow_patterns=wanted,
            force_download=force,
            tqdm_class=_silent_tqdm(),
        )
    except HfHubHTTPError as err:
        if _status(err) < 500:
            raise _http_error(err, repo_id, rev) from None
        raise _interrupted(where, err) from None
    except (httpx2.TransportError, OSError) as err:
        raise _interrupted(where, err) from None
    return Path(path)


def _interrupted(where: str, err: BaseException) -> ModelError:
    return ModelError(
        f"download did not finish ({type(err).__name__}: {_short(err)})",
        where,
        f"run `pcsep models download {where}` again: finished files are kept, "
        "unfinished ones are fetched again",
    )


def _from_cache(repo_id: str, rev: str, reason: str) -> tuple[Path, str]:
    where = f"{repo_id}@{rev}"
    commit = cached_commit(repo_id, rev)
    path = _complete_snapshot(repo_id, commit) if commit else None
    if path is None or commit is None:
        state = "only partly downloaded to" if commit else "not in"
        raise ModelError(
            f"{state} the cache {hub_cache_dir()}, and {reason}",
            where,
            f"run `pcsep models download {where}` with network access first",
        )
    return path, commit


def _complete_snapshot(repo_id: str, commit: str) -> Path | None:
    path = repo_cache_dir(repo_id) / "snapshots" / commit
    if all((path / name).is_file() for name in (CONFIG_FILE, WEIGHTS_FILE)):
        return path
    return None


def _require_complete(path: Path, where: str) -> None:
    missing = [n for n in (CONFIG_FILE, WEIGHTS_FILE) if not (path / n).is_file()]
    if missing:
        raise ModelError(
            f"downloaded snapshot lacks {', '.join(missing)}",
            where,
            f"run `pcsep models download {where}` again",
        )


def _status(err: Any) -> int:
    response = getattr(err, "response", None)
    return int(getattr(response, "status_code", 0) or 0)


def _short(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _http_error(err: Exception, repo_id: str, rev: str) -> ModelError:
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo_id}@{rev}"
    if isinstance(err, GatedRepoError):
        return ModelError(
            f"repository is gated on {endpoint()}",
            where,
            "accept its terms on the Hub and set HF_TOKEN to a token of that account",
        )
    if isinstance(err, RepositoryNotFoundError):
        return ModelError(
            f"no such model repository on {endpoint()}",
            where,
            "check the name; for a private repository set HF_TOKEN",
        )
    if isinstance(err, RevisionNotFoundError):
        return ModelError(
            f"revision {rev!r} does not exist in {repo_id}",
            where,
            "use a branch, a tag or a full 40-character commit hash of the repository",
        )
    return ModelError(f"the Hub answered {_status(err)}: {_short(err)}", where)


def _silent_tqdm() -> type:
    """A tqdm class that never draws: library code does not print (the CLI shows status)."""
    from tqdm.auto import tqdm

    class _Silent(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return _Silent


def snapshot_listing(repo_id: str) -> list[dict[str, Any]]:
    """Cached revisions of one repository: commit, refs pointing at it, files and sizes.

    Returns:
        One dict per snapshot: ``{"commit", "refs": [...], "path", "files": {name: bytes},
        "size_bytes"}``, newest first; empty when nothing is cached.
    """
    root = repo_cache_dir(repo_id)
    snaps = root / "snapshots"
    if not snaps.is_dir():
        return []
    refs: dict[str, list[str]] = {}
    refs_dir = root / "refs"
    if refs_dir.is_dir():
        for ref in sorted(p for p in refs_dir.rglob("*") if p.is_file()):
            commit = ref.read_text().strip()
            refs.setdefault(commit, []).append(ref.relative_to(refs_dir).as_posix())
    out = []
    for snap in snaps.iterdir():
        if not snap.is_dir():
            continue
        files = {p.name: p.stat().st_size for p in snap.iterdir() if p.is_file()}
        out.append(
            {
                "commit": snap.name,
                "refs": refs.get(snap.name, []),
                "path": str(snap),
                "files": files,
                "size_bytes": sum(files.values()),
                "mtime": snap.stat().st_mtime,
            }
        )
    out.sort(key=lambda s: s["mtime"], reverse=True)
    for snap in out:
        del snap["mtime"]
    return out


def cached_repo_ids() -> list[str]:
    """``owner/name`` of every model repository in the cache."""
    root = hub_cache_dir()
    if not root.is_dir():
        return []
    ids = []
    for entry in sorted(root.iterdir()):
        parts = entry.name.split("--")
        if entry.is_dir() and len(parts) == 3 and parts[0] == "models":
            ids.append(f"{parts[1]}/{parts[2]}")
    return ids


__all__ = [
    "ALLOW_PATTERNS",
    "cached_commit",
    "cached_repo_ids",
    "endpoint",
    "fetch",
    "hub_cache_dir",
    "is_offline",
    "repo_cache_dir",
    "set_offline",
    "snapshot_listing",
]
