"""What ``pcsep models list / info / remove`` report: bundled and cached models, model cards.

Cached Hub repositories are those of the standard ``huggingface_hub`` cache whose snapshot
``config.json`` looks like a pcsep config (it has ``classes`` and ``sample_rate``), so other
libraries' models in the same cache are left out. Nothing here imports torch except
:func:`model_info`, which validates the config.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from pcsep_cli.dataclass_json import read_config_file
from pcsep_cli.errors import ModelError
from pcsep_cli.hub.download import (
    cached_commit,
    cached_repo_ids,
    hub_cache_dir,
    repo_cache_dir,
    snapshot_listing,
)
from pcsep_cli.hub.models import ModelRef, bundled_models, meta_model, parse_ref, resolve, verify
from pcsep_cli.hub.safety import read_safetensors_header
from pcsep_cli.hub.userconfig import default_model
from pcsep_cli.nets.files import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE


def list_models() -> dict[str, Any]:
    """Bundled models, cached Hub models and the default.

    Returns:
        ``{"default", "default_origin", "cache_dir", "models": [...]}``; each model is
        ``{"ref", "source", "default", "size_bytes", "path", "revisions"}``, where a Hub
        model's ``revisions`` are ``{"commit", "refs", "size_bytes", "complete", "path"}``
        (bundled: an empty list). A default that is neither bundled nor cached (a directory,
        a Hub id not downloaded yet) is listed too, with ``"available"`` telling whether it
        can be used now.
    """
    default, origin = default_model()
    try:
        default_ref: ModelRef | None = parse_ref(default)
    except ModelError:
        default_ref = None
    models: list[dict[str, Any]] = []
    for name, path in bundled_models().items():
        models.append(
            {
                "ref": name,
                "source": "bundled",
                "default": default_ref is not None and default_ref == ModelRef("bundled", name),
                "size_bytes": _dir_size(path),
                "path": str(path),
                "revisions": [],
            }
        )
    for repo_id in cached_repo_ids():
        snaps = [s for s in snapshot_listing(repo_id) if _is_pcsep_snapshot(Path(s["path"]))]
        if not snaps:
            continue
        for snap in snaps:
            snap["complete"] = all(n in snap["files"] for n in (CONFIG_FILE, WEIGHTS_FILE))
            del snap["files"]
        is_default = (
            default_ref is not None and default_ref.source == "hub" and default_ref.name == repo_id
        )
        models.append(
            {
                "ref": repo_id,
                "source": "hub",
                "default": is_default,
                "size_bytes": _dir_size(repo_cache_dir(repo_id) / "blobs"),
                "path": str(repo_cache_dir(repo_id)),
                "revisions": snaps,
            }
        )
    if not any(m["default"] for m in models):
        models.append(_default_entry(default, default_ref))
    return {
        "default": default,
        "default_origin": origin,
        "cache_dir": str(hub_cache_dir()),
        "models": models,
    }


def _default_entry(default: str, ref: ModelRef | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ref": default,
        "source": ref.source if ref else "unknown",
        "default": True,
        "size_bytes": None,
        "path": None,
        "revisions": [],
        "available": False,
    }
    if ref is not None and ref.source == "local":
        entry.update(path=ref.name, size_bytes=_dir_size(Path(ref.name)), available=True)
    return entry


def _is_pcsep_snapshot(path: Path) -> bool:
    try:
        data = read_config_file(path / CONFIG_FILE)
    except ModelError:
        return False
    return isinstance(data, dict) and "classes" in data and "sample_rate" in data


def _dir_size(path: Path) -> int:
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def model_info(ref: str | None = None, *, offline: bool | None = None) -> dict[str, Any]:
    """Describe a model: origin, files, validated config, size and its model card's table.

    Args:
        ref: any model reference (``None``: the default); Hub models are downloaded if needed.
        offline: never contact the Hub; ``None`` reads ``HF_HUB_OFFLINE``.

    Returns:
        :meth:`ResolvedModel.describe` plus ``"files"`` (name → bytes), ``"classes"``,
        ``"sample_rate"``, ``"conditioning"``, ``"microphones"`` (whether it reads ``--mics``),
        ``"parameters"`` (learned), ``"tensors"``
        (entries of the weights file), ``"config"``
        and ``"evaluation"`` (``{"columns", "rows"}`` from the card, or ``None``).

    Raises:
        ModelError: the reference cannot be resolved, or its config or header is invalid.
    """
    resolved = resolve(ref, offline=offline)
    config = verify(resolved)
    header = read_safetensors_header(resolved.path / WEIGHTS_FILE)
    card_path = resolved.path / CARD_FILE
    card = card_path.read_text(encoding="utf-8", errors="replace") if card_path.is_file() else ""
    info = resolved.describe()
    info.update(
        files={p.name: p.stat().st_size for p in sorted(resolved.path.iterdir()) if p.is_file()},
        classes=list(config.classes),
        sample_rate=config.sample_rate,
        conditioning=getattr(config, "conditioning", None),
        microphones=bool(config.spatial.enabled),
        parameters=sum(p.numel() for p in meta_model(config).parameters()),
        tensors=len(header),
        config=config.to_dict(),
        evaluation=evaluation_table(card),
    )
    return info


def evaluation_table(card: str) -> dict[str, list[Any]] | None:
    """The first Markdown table under a heading that mentions evaluation (else the first table).

    Args:
        card: a model card (``README.md``) text.

    Returns:
        ``{"columns": [...], "rows": [[...], ...]}`` with cells as strings, or ``None``.
    """
    lines = card.splitlines()
    start = 0
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#") and "evaluation" in line.lower():
            start = i
            break
    table: list[list[str]] = []
    for line in lines[start:]:
        stripped = line.strip()
        if stripped.startswith("|"):
            table.append([c.strip() for c in stripped.strip("|").split("|")])
        elif table:
            break
    if len(table) < 2:
        return None
    body = [row for row in table[1:] if not all(set(c) <= set(":- ") for c in row)]
    return {"columns": table[0], "rows": body}


def remove_model(ref: str) -> dict[str, Any]:
    """Delete a Hub model (one revision, or every revision) from the cache.

    Only the named repository is touched: another repository that holds the same commit (a
    mirror) keeps it. A revision takes its snapshot, the refs that point at it and the blobs
    no other revision of the repository uses; the last revision takes the repository's
    folder. Nothing outside the cache is ever deleted: when the repository's folder is a
    symbolic link (a cache entry moved to another disk), removing the model removes the link
    only and leaves the folder it points to as it was, and removing one revision is refused
    (it would delete inside that folder).

    Args:
        ref: ``owner/name`` (every cached revision) or ``owner/name@revision``.

    Returns:
        ``{"ref", "removed": [paths], "freed_bytes", "was_default", "kept_target"}``;
        ``kept_target`` is the folder a removed link pointed to (else ``None``).

    Raises:
        ModelError: a bundled model or local directory (never deleted), nothing cached, or
            one revision of a linked cache entry.
    """
    parsed = parse_ref(ref)
    if parsed.source == "bundled":
        raise ModelError(
            "bundled models ship with pcsep and cannot be removed",
            parsed.name,
            "choose another default with `pcsep models use REF` instead",
        )
    if parsed.source == "local":
        raise ModelError(
            "pcsep removes only models it downloaded, not your directories",
            parsed.name,
            "delete the directory yourself if you no longer need it",
        )
    default, _ = default_model()
    try:
        default_ref = parse_ref(default)
    except ModelError:
        default_ref = None
    was_default = default_ref is not None and default_ref.name == parsed.name
    root = repo_cache_dir(parsed.name)
    linked = root.is_symlink()
    if not linked and not root.is_dir():
        raise ModelError(f"not in the cache {hub_cache_dir()}", ref, "see `pcsep models list`")
    report: dict[str, Any] = {"ref": ref, "removed": [str(root)], "kept_target": None}
    if parsed.revision is None:
        if linked:
            report["kept_target"] = os.path.normpath(root.parent / os.readlink(root))
            root.unlink()  # the link, never what it points to
            return {**report, "freed_bytes": 0, "was_default": was_default}
        freed = _dir_size(root / "blobs")
        shutil.rmtree(root)
        return {**report, "freed_bytes": freed, "was_default": was_default}
    outside = next((p for p in (root, root / "snapshots") if p.is_symlink()), None)
    if outside is not None:
        raise ModelError(
            f"is a link to {os.readlink(outside)}, outside the cache: pcsep will not delete a "
            "revision there",
            outside,
            f"`pcsep models remove {parsed.name}` removes the cache entry and leaves the link's "
            "target alone; delete revisions there yourself",
        )
    commit = cached_commit(parsed.name, parsed.revision)
    if commit is None or not (root / "snapshots" / commit).is_dir():
        raise ModelError(
            f"revision {parsed.revision!r} is not in the cache {hub_cache_dir()}",
            ref,
            "see `pcsep models list` for cached revisions",
        )
    freed = _remove_revision(root, commit)
    return {
        **report,
        "removed": [str(root / "snapshots" / commit)],
        "freed_bytes": freed,
        "was_default": was_default and (default_ref.revision in (None, parsed.revision)),
    }


def _remove_revision(root: Path, commit: str) -> int:
    """Delete one snapshot of the repository cached in ``root``; return the bytes freed.

    ``huggingface_hub``'s ``delete_revisions`` is not used: it looks a commit up across every
    repository of the cache and deletes it from whichever it meets first, so removing a
    revision of ``owner/name`` could delete a mirror holding the same commit instead.
    """
    snapshots = root / "snapshots"
    snap = snapshots / commit
    kept: set[Path] = set()
    for other in snapshots.iterdir():
        if other.name != commit:
            kept |= _blobs_of(other, root)
    unused = _blobs_of(snap, root) - kept
    freed = sum(b.stat().st_size for b in unused)
    refs = root / "refs"
    for ref in refs.rglob("*") if refs.is_dir() else ():
        if ref.is_file() and not ref.is_symlink() and ref.read_text().strip() == commit:
            ref.unlink()
    if snap.is_symlink():  # not how the cache is made: drop the link, follow nothing
        snap.unlink()
    else:
        freed += _dir_size(snap)  # files copied instead of linked (no symlinks on Windows)
        shutil.rmtree(snap)
    for blob in unused:
        blob.unlink()
    if not any(snapshots.iterdir()):
        shutil.rmtree(root)  # its last revision: what is left (blobs, refs) belongs to no one
    return freed


def _blobs_of(snapshot: Path, root: Path) -> set[Path]:
    """The files of ``root/blobs`` that the links in ``snapshot`` point to (links that lead
    anywhere else, another repository's blobs included, are not this repository's)."""
    blobs = root / "blobs"
    if snapshot.is_symlink() or blobs.is_symlink() or not blobs.is_dir():
        return set()
    here = blobs.resolve()
    found = set()
    for link in snapshot.rglob("*"):
        if link.is_symlink():
            target = link.resolve()
            if target.parent == here and target.is_file():
                found.add(blobs / target.name)
    return found
