"""``pcsep models push``: publish a model folder to the Hub, checked as strictly as a download.

:func:`prepare` checks everything that needs no network first: the repository id and branch,
then the folder exactly as a download is checked (:func:`~pcsep_cli.hub.models.verify`: no
pickle, ``config.json`` field by field and its class names, every tensor of
``model.safetensors`` against that config, without reading a weight), then the card
(:mod:`pcsep_cli.hub.card`). A folder that fails is refused before any request is made, so
nothing broken is ever published.

:func:`upload` then uses ``huggingface_hub``'s upload API: ``create_repo(exist_ok=True)``,
``create_branch`` for a branch that does not exist yet, and one ``create_commit`` holding
``config.json``, ``model.safetensors`` and ``README.md`` (the weights go through LFS or Xet as
the Hub decides). One commit: the repository never holds a config without its weights, and
files that did not change are not sent again. ``HF_ENDPOINT`` and ``HF_TOKEN`` are read when
it runs. HTTP and network failures become one :class:`~pcsep_cli.errors.HubError` that says
how to fix them. Progress bars and the library's log lines are kept off: library code does not
print (warnings the Hub sends come back as ``notes``).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pcsep_cli import __version__
from pcsep_cli.errors import HubError, ModelError
from pcsep_cli.hub.card import ModelFacts, build_card, read_eval_report
from pcsep_cli.hub.download import COMMIT_RE, DEFAULT_REVISION, endpoint
from pcsep_cli.hub.models import REPO_ID_RE, ResolvedModel, verify
from pcsep_cli.nets.files import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE

#: What a push uploads, in this order; nothing else in the folder is sent.
UPLOADED = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)


@dataclass(frozen=True)
class PushPlan:
    """A checked folder and what a push of it uploads (made by :func:`prepare`).

    Attributes:
        directory: the model folder.
        repo_id: ``owner/name``; revision: the branch.
        card: the ``README.md`` to upload (the folder's own card is not changed).
        skipped: other files in the folder, not uploaded.
    """

    directory: Path
    repo_id: str
    revision: str
    card: str
    skipped: tuple[str, ...] = ()

    def files(self) -> dict[str, Path | bytes]:
        """Repository path → local file or content, in :data:`UPLOADED` order."""
        return {
            CONFIG_FILE: self.directory / CONFIG_FILE,
            WEIGHTS_FILE: self.directory / WEIGHTS_FILE,
            CARD_FILE: self.card.encode("utf-8"),
        }

    def sizes(self) -> dict[str, int]:
        """Repository path → bytes uploaded."""
        return {
            name: len(src) if isinstance(src, bytes) else src.stat().st_size
            for name, src in self.files().items()
        }


@dataclass(frozen=True)
class PushResult:
    """What a push did.

    Attributes:
        repo_id, revision: where it went; commit: the commit the branch now points to
            (``None`` for a dry run); url: the commit's page.
        files: file → bytes uploaded (or to upload); skipped: folder files left out.
        notes: warnings the Hub or the client sent (metadata it did not recognise ...).
    """

    repo_id: str
    revision: str
    commit: str | None
    url: str | None
    files: dict[str, int]
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "url": self.url,
            "files": self.files,
            "skipped": list(self.skipped),
            "notes": list(self.notes),
        }


def check_target(repo_id: str, revision: str | None) -> tuple[str, str]:
    """Check a repository id and a branch name before anything is read or sent.

    Returns:
        ``(repo_id, branch)``; no revision means ``main``.

    Raises:
        ValueError: not ``owner/name``, or not a branch name (a commit hash, ``..`` ...).
    """
    text = repo_id.strip()
    if "@" in text:
        raise ValueError(f"{repo_id!r}: give the branch with --revision, not owner/name@branch")
    if not REPO_ID_RE.fullmatch(text) or "--" in text or ".." in text:
        raise ValueError(f"{repo_id!r} is not a Hub repository id owner/name")
    branch = (revision or DEFAULT_REVISION).strip()
    parts = branch.split("/")
    if (
        not branch
        or COMMIT_RE.fullmatch(branch)
        or "" in parts
        or ".." in parts
        or any(c.isspace() or c in "\\~^:?*[@" or not c.isprintable() for c in branch)
    ):
        raise ValueError(
            f"--revision {revision!r} is not a branch name (a push adds a commit to a branch; "
            "commits and tags cannot be pushed to)"
        )
    return text, branch


def prepare(
    directory: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    evaluation: str | Path | None = None,
    datasets: Sequence[str] = (),
    license: str | None = None,  # noqa: A002 - the Hub's key
) -> PushPlan:
    """Check a model folder and build its card; no network.

    Args:
        directory: a model folder (``config.json``, ``model.safetensors``, ``README.md``).
        repo_id: ``owner/name``.
        revision: the branch (``None``: ``main``).
        evaluation: a ``pcsep evaluate --json`` report, for the card's ``model-index``.
        datasets: Hub dataset ids for the card's ``datasets``.
        license: the card's ``license`` (default: the folder card's).

    Returns:
        The plan :func:`upload` carries out.

    Raises:
        ValueError: bad repository id or branch (a usage error).
        ModelError: the folder fails the checks a download gets, its card's metadata is
            invalid, or the evaluation report is unreadable.
    """
    repo_id, branch = check_target(repo_id, revision)
    folder = Path(directory).expanduser()
    config = verify(ResolvedModel(folder, str(folder), None, None, None, "local"))
    report = read_eval_report(evaluation) if evaluation is not None else None
    card_file = folder / CARD_FILE
    text = None
    if card_file.is_file():
        try:
            text = card_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ModelError(
                f"cannot read the model card ({err})", card_file, "save README.md as UTF-8"
            ) from None
    use_ref = repo_id if branch == DEFAULT_REVISION else f"{repo_id}@{branch}"
    facts = ModelFacts(
        name=repo_id.split("/")[1],
        use_ref=use_ref,
        classes=tuple(config.classes),
        sample_rate=int(config.sample_rate),
        conditioning=str(config.conditioning),
    )
    card = build_card(
        text, facts, evaluation=report, datasets=datasets, license=license, where=card_file
    )
    skipped = tuple(sorted(p.name for p in folder.iterdir() if p.name not in UPLOADED))
    return PushPlan(folder.resolve(), repo_id, branch, card, skipped)


def upload(
    plan: PushPlan,
    *,
    private: bool = False,
    token: str | None = None,
    message: str | None = None,
) -> PushResult:
    """Publish a prepared folder: create the repository and branch if needed, then commit.

    Args:
        plan: from :func:`prepare`.
        private: create the repository private; an existing public one is refused rather
            than published to.
        token: a Hub token with write access (default: ``HF_TOKEN``, then the one saved by
            ``hf auth login``).
        message: the commit's summary.

    Returns:
        Where the files went and the new commit.

    Raises:
        HubError: no or refused token (401), no write access (403), the Hub unreachable or
            failing, or an existing public repository with ``private``.
    """
    import httpx2
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    token = token or os.environ.get("HF_TOKEN") or None
    where = f"{plan.repo_id}@{plan.revision}"
    api = HfApi(endpoint=endpoint(), token=token)
    summary = message or f"Upload {plan.directory.name} with pcsep {__version__}"
    with _quiet() as caught:
        try:
            operations = [CommitOperationAdd(name, src) for name, src in plan.files().items()]
            api.create_repo(plan.repo_id, private=True if private else None, exist_ok=True)
            if private and not api.repo_info(plan.repo_id).private:
                raise HubError(
                    "the repository exists and is public; --private does not change it",
                    where,
                    "make it private in its settings on the Hub first, or drop --private",
                )
            if plan.revision != DEFAULT_REVISION:
                api.create_branch(plan.repo_id, branch=plan.revision, exist_ok=True)
            info = api.create_commit(
                plan.repo_id, operations, commit_message=summary, revision=plan.revision
            )
        except HfHubHTTPError as err:
            raise _http_error(err, where, token) from None
        except RuntimeError as err:  # an LFS upload failed; the HTTP error is its cause
            if isinstance(err.__cause__, HfHubHTTPError):
                raise _http_error(err.__cause__, where, token) from None
            raise _failed(where, err) from None
        except httpx2.TransportError as err:
            raise HubError(
                f"cannot reach the Hub at {endpoint()} ({type(err).__name__}: {_first(err)})",
                where,
                "check the network and HF_ENDPOINT, then push again; nothing was published",
            ) from None
        except OSError as err:  # a file of the folder went away or became unreadable
            raise HubError(
                f"cannot read {err.filename or 'a model file'} ({err.strerror or err})",
                where,
                "leave the folder alone while it is pushed, then push again",
            ) from None
        except ValueError as err:  # the Hub refused the card's metadata, a file vanished ...
            raise _failed(where, err) from None
    # What the Hub says about the card is worth showing; a library's deprecations are not.
    notes = tuple(
        dict.fromkeys(
            _first(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)
        )
    )
    return PushResult(
        plan.repo_id, plan.revision, info.oid, info.commit_url, plan.sizes(), plan.skipped, notes
    )


def push(
    directory: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
    message: str | None = None,
    evaluation: str | Path | None = None,
    datasets: Sequence[str] = (),
    license: str | None = None,  # noqa: A002 - the Hub's key
    dry_run: bool = False,
) -> PushResult:
    """Check a model folder and publish it to ``repo_id`` (:func:`prepare`, :func:`upload`).

    ``dry_run`` checks and builds the card without any request (``commit`` is ``None``).

    Raises:
        ValueError: bad repository id or branch.
        ModelError: the folder, its card or the evaluation report is refused.
        HubError: see :func:`upload`.
    """
    plan = prepare(
        directory,
        repo_id,
        revision=revision,
        evaluation=evaluation,
        datasets=datasets,
        license=license,
    )
    if dry_run:
        return PushResult(plan.repo_id, plan.revision, None, None, plan.sizes(), plan.skipped)
    return upload(plan, private=private, token=token, message=message)


@contextmanager
def _quiet() -> Iterator[list[warnings.WarningMessage]]:
    """No progress bar or log line from ``huggingface_hub``; its warnings are collected."""
    from huggingface_hub.utils import disable_progress_bars

    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught, disable_progress_bars():
            warnings.simplefilter("always")
            yield caught
    finally:
        logger.setLevel(level)


def _first(err: object) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _failed(where: str, err: BaseException) -> HubError:
    return HubError(f"the push failed ({_first(err)})", where, "nothing was published")


def _http_error(err: Any, where: str, token: str | None) -> HubError:
    from huggingface_hub import get_token

    response = getattr(err, "response", None)
    status = int(getattr(response, "status_code", 0) or 0)
    said = getattr(err, "server_message", None) or _first(err)
    said = " ".join(str(said).split())[:200]
    repo_id = where.split("@")[0]
    if status == 401 and not (token or get_token()):
        return HubError(
            f"the Hub at {endpoint()} needs a token to publish (HTTP 401)",
            where,
            "set HF_TOKEN to a token with write access, run `hf auth login`, or pass --token",
        )
    if status == 401:
        return HubError(
            f"the Hub at {endpoint()} refused the token (HTTP 401: {said})",
            where,
            "the token is invalid or expired: make a new one with write access and set HF_TOKEN",
        )
    if status == 403:
        return HubError(
            f"this token may not write to {repo_id} (HTTP 403: {said})",
            where,
            "push to your own namespace (your user name) or an organisation where you may "
            "write, with a token that has write access",
        )
    if status >= 500:
        return HubError(
            f"the Hub at {endpoint()} failed (HTTP {status}: {said})",
            where,
            "try again later: a push is one commit, so nothing was half-published",
        )
    return HubError(f"the Hub answered HTTP {status}: {said}", where)


__all__ = ["UPLOADED", "PushPlan", "PushResult", "check_target", "prepare", "push", "upload"]
