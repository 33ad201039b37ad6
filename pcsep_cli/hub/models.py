"""Model references: bundled names, local directories and Hub ids, resolved and loaded safely.

A reference is one of:

- a **bundled** name (``pcsep-base``): a model directory that ships with pcsep, see
  :func:`bundled_models_dirs`;
- a **local** directory holding ``config.json`` and ``model.safetensors`` (an existing
  directory wins over a Hub id of the same spelling; write ``./owner/name`` to be explicit);
- a **Hub** id ``owner/name[@revision]``, the revision a branch, tag or full commit hash
  (default ``main``), downloaded with ``huggingface_hub`` into its standard cache
  (:mod:`pcsep_cli.hub.download`).

No reference means the default model (:func:`pcsep_cli.hub.userconfig.default_model`:
``PCSEP_MODEL``, then ``pcsep models use``, then ``pcsep-base``).

Loading checks everything before any tensor is read (:mod:`pcsep_cli.hub.safety`): the files
(never pickle), ``config.json`` against the config dataclasses, then the safetensors header
against the tensors that config implies (the model is built on the ``meta`` device, so
nothing is allocated) and against the file's size. Only then does
:meth:`SeparationNet.read_weights` read the weights.

For manifests, :func:`describe` gives ``{"id", "revision", "commit", "source", "path"}``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pcsep_cli.errors import ModelError
from pcsep_cli.hub.download import DEFAULT_REVISION, fetch, is_offline, set_offline
from pcsep_cli.hub.safety import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    check_model_dir,
    check_tensors,
    read_safetensors_header,
)
from pcsep_cli.hub.userconfig import default_model

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from pcsep_cli.nets.model import SeparationNet, SeparatorConfig

Source = Literal["bundled", "local", "hub"]
#: Extra directory of bundled models searched before the packaged ones (packagers, tests).
BUNDLED_DIR_ENV = "PCSEP_BUNDLED_DIR"
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_HUB_RE = re.compile(rf"(?P<repo>{_PART}/{_PART})(?:@(?P<rev>[^\s@]+))?")
#: A Hub repository id ``owner/name`` (also refused: ``--`` and ``..`` anywhere in it).
REPO_ID_RE = re.compile(rf"{_PART}/{_PART}")
_REF_HINT = "use a bundled name (see `pcsep models list`), a model directory, or owner/name[@rev]"

__all__ = [
    "REPO_ID_RE",
    "ModelRef",
    "ResolvedModel",
    "bundled_models",
    "bundled_models_dir",
    "bundled_models_dirs",
    "default_model",
    "describe",
    "download",
    "expected_tensors",
    "load_model",
    "load_resolved",
    "meta_model",
    "parse_ref",
    "resolve",
    "set_offline",
    "verify",
]


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference (nothing resolved or downloaded yet).

    Attributes:
        source: ``"bundled"``, ``"local"`` or ``"hub"``.
        name: bundled name, absolute directory, or ``owner/name``.
        revision: Hub revision as written (``None``: ``main``); always ``None`` otherwise.
    """

    source: Source
    name: str
    revision: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.revision}" if self.revision else self.name


@dataclass(frozen=True)
class ResolvedModel:
    """A model directory on disk and what it was resolved from.

    Attributes:
        path: directory holding ``config.json`` and ``model.safetensors``.
        ref: the reference as given (or the default's).
        repo_id: ``owner/name`` for Hub models, else ``None``.
        revision: requested Hub revision (``main`` when none was given), else ``None``.
        commit: the 40-hex commit that revision pointed to, else ``None``.
        source: ``"bundled"``, ``"local"`` or ``"hub"``.
    """

    path: Path
    ref: str
    repo_id: str | None
    revision: str | None
    commit: str | None
    source: Source

    def describe(self) -> dict[str, Any]:
        """What a manifest records: ``{"id", "revision", "commit", "source", "path"}``."""
        ident = self.repo_id if self.source == "hub" else self.ref
        if self.source == "local":
            ident = str(self.path)
        return {
            "id": ident,
            "revision": self.revision,
            "commit": self.commit,
            "source": self.source,
            "path": str(self.path),
        }


def bundled_models_dirs() -> list[Path]:
    """Directories searched for bundled models, in order, those that exist.

    1. ``$PCSEP_BUNDLED_DIR`` when set (packagers, tests);
    2. ``pcsep_cli/bundled/`` inside the installed package (the wheel maps the source
       tree's ``models/`` there);
    3. ``models/`` at the top of a source checkout (the parent of the ``pcsep_cli`` package,
       used only when a ``pyproject.toml`` sits beside it, so an unrelated ``models``
       folder in site-packages is never picked up).
    """
    package = Path(__file__).resolve().parents[1]  # pcsep_cli/
    candidates = []
    if os.environ.get(BUNDLED_DIR_ENV):
        candidates.append(Path(os.environ[BUNDLED_DIR_ENV]).expanduser())
    candidates.append(package / "bundled")
    if (package.parent / "pyproject.toml").is_file():
        candidates.append(package.parent / "models")
    return [c for c in candidates if c.is_dir()]


def bundled_models_dir() -> Path | None:
    """The first directory of :func:`bundled_models_dirs`, or ``None``."""
    dirs = bundled_models_dirs()
    return dirs[0] if dirs else None


def bundled_models() -> dict[str, Path]:
    """Bundled model name → directory; a name found in an earlier directory wins."""
    found: dict[str, Path] = {}
    for root in bundled_models_dirs():
        for entry in sorted(root.iterdir()):
            if entry.name not in found and (entry / CONFIG_FILE).is_file():
                found[entry.name] = entry
    return found


def parse_ref(ref: str) -> ModelRef:
    """Classify a reference without touching the network.

    Raises:
        ModelError: empty, unknown bundled name, missing directory, or malformed Hub id.
    """
    text = ref.strip()
    if not text:
        raise ModelError("empty model reference", hint=_REF_HINT)
    looks_like_path = (
        text.startswith(("/", ".", "~"))
        or "\\" in text
        or (len(text) > 1 and text[1] == ":")
        or (text.count("/") > 1 and "@" not in text)
    )
    path = Path(text).expanduser()
    if path.is_dir():
        return ModelRef("local", str(path.resolve()))
    if looks_like_path:
        raise ModelError("model directory not found", text, _REF_HINT)
    if "/" not in text:
        bundled = bundled_models()
        if text in bundled:
            return ModelRef("bundled", text)
        names = ", ".join(sorted(bundled)) or "none installed"
        raise ModelError(f"unknown model {text!r} (bundled models: {names})", hint=_REF_HINT)
    match = _HUB_RE.fullmatch(text)
    if match is None or "--" in match["repo"] or ".." in match["repo"]:
        raise ModelError(f"{text!r} is not a Hub id owner/name[@revision]", hint=_REF_HINT)
    rev = match["rev"]
    if rev is not None and (rev.startswith("/") or ".." in rev.split("/") or "\\" in rev):
        raise ModelError(f"revision {rev!r} is not a branch, tag or commit", text, _REF_HINT)
    return ModelRef("hub", match["repo"], rev)


def resolve(
    ref: str | None = None, *, offline: bool | None = None, force_download: bool = False
) -> ResolvedModel:
    """Find (downloading if needed) the model directory a reference names.

    Args:
        ref: bundled name, directory or ``owner/name[@revision]``; ``None``: the default.
        offline: never contact the Hub; ``None`` reads ``HF_HUB_OFFLINE``.
        force_download: fetch Hub files again even when cached.

    Returns:
        The directory and what it was resolved from.

    Raises:
        ModelError: unknown reference, missing files, pickle-only or unsafe repository,
            download failure, or offline with the revision not cached.
    """
    if ref is not None:
        text, parsed = ref, parse_ref(ref)
    else:
        text, origin = default_model()
        try:
            parsed = parse_ref(text)
        except ModelError as err:
            where = {"env": "PCSEP_MODEL", "config": "`pcsep models use`"}.get(origin, origin)
            raise ModelError(
                f"the default model set by {where} is unusable: {err.message}",
                err.path,
                "set another with `pcsep models use REF` or fix PCSEP_MODEL",
            ) from None
    if parsed.source == "hub":
        path, commit = fetch(
            parsed.name, parsed.revision, offline=is_offline(offline), force=force_download
        )
        revision = parsed.revision or DEFAULT_REVISION
        resolved = ResolvedModel(path, text, parsed.name, revision, commit, "hub")
    elif parsed.source == "bundled":
        resolved = ResolvedModel(bundled_models()[parsed.name], text, None, None, None, "bundled")
    else:
        resolved = ResolvedModel(Path(parsed.name), text, None, None, None, "local")
    check_model_dir(resolved.path)
    return resolved


def download(ref: str, *, force: bool = False) -> ResolvedModel:
    """Make a model available offline; bundled and local models are only checked.

    Args:
        ref: any model reference.
        force: download Hub files again even when cached.

    Returns:
        The resolved model.

    Raises:
        ModelError: as :func:`resolve`, or when its checkpoint fails the safety checks.
    """
    resolved = resolve(ref, force_download=force)
    verify(resolved)
    return resolved


def verify(resolved: ResolvedModel) -> SeparatorConfig:
    """Check a model directory fully without reading a tensor.

    Returns:
        The validated config.

    Raises:
        ModelError: pickle-only or incomplete directory, invalid config (naming the field),
            or a weights header that does not match the config or the file.
    """
    from pcsep_cli.nets.model import load_config

    check_model_dir(resolved.path)
    config = load_config(resolved.path)
    weights = resolved.path / WEIGHTS_FILE
    check_tensors(weights, read_safetensors_header(weights), expected_tensors(config))
    return config


def load_resolved(resolved: ResolvedModel, *, device: str | torch.device = "cpu") -> SeparationNet:
    """Verify and load a resolved model, in eval mode, on ``device``.

    The returned model carries ``hub_source`` (the :class:`ResolvedModel`) for
    :func:`describe`.

    Raises:
        ModelError: see :func:`verify`.
    """
    from pcsep_cli.nets.model import SeparationNet

    net = SeparationNet(verify(resolved)).read_weights(resolved.path).to(device).eval()
    net.hub_source = resolved
    return net


def load_model(
    ref: str | None = None, *, device: str | torch.device = "cpu", offline: bool | None = None
) -> SeparationNet:
    """Resolve a reference and load its model (see :func:`resolve`, :func:`load_resolved`).

    Args:
        ref: bundled name, directory or ``owner/name[@revision]``; ``None``: the default.
        device: where the weights go.
        offline: never contact the Hub; ``None`` reads ``HF_HUB_OFFLINE``.

    Returns:
        The model in eval mode, with ``hub_source`` set.

    Raises:
        ModelError: the reference cannot be resolved or the checkpoint is refused.
    """
    return load_resolved(resolve(ref, offline=offline), device=device)


def describe(model: ResolvedModel | Any) -> dict[str, Any]:
    """Manifest entry of a :class:`ResolvedModel` or a model from :func:`load_model`.

    Returns:
        ``{"id", "revision", "commit", "source", "path"}``.

    Raises:
        ValueError: the object was not loaded through this module.
    """
    if isinstance(model, ResolvedModel):
        return model.describe()
    source = getattr(model, "hub_source", None)
    if not isinstance(source, ResolvedModel):
        raise ValueError(f"{type(model).__name__} was not loaded by pcsep_cli.hub.load_model")
    return source.describe()


_TORCH_TO_SAFETENSORS = {
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "float64": "F64",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


def expected_tensors(config: SeparatorConfig) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name → (safetensors dtype, shape) that a checkpoint for ``config`` must hold.

    The model is built on the ``meta`` device: shapes without memory.
    """
    return {
        name: (
            _TORCH_TO_SAFETENSORS.get(str(t.dtype).removeprefix("torch."), str(t.dtype)),
            tuple(t.shape),
        )
        for name, t in meta_model(config).state_dict().items()
    }


def meta_model(config: SeparatorConfig) -> SeparationNet:
    """The model for ``config`` built on the ``meta`` device: shapes and dtypes, no memory."""
    import torch

    from pcsep_cli.nets.model import SeparationNet

    with torch.device("meta"):
        return SeparationNet(config)
