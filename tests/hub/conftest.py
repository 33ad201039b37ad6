"""A local server that speaks the Hugging Face Hub's HTTP protocol, and an isolated environment.

The real ``huggingface_hub`` client talks to it through ``HF_ENDPOINT``: no network, no mock.
It serves what ``snapshot_download`` uses (huggingface_hub 2.x):

- ``GET /api/models/{owner}/{name}[/revision/{rev}]``: ``sha`` and ``siblings``;
- ``GET /api/models/{owner}/{name}/tree/{rev}``: the file list of a commit;
- ``HEAD`` / ``GET /{owner}/{name}/resolve/{rev}/{file}``: ``X-Repo-Commit``, ``ETag``,
  ``Content-Length``, ``Range`` requests (206). No Xet headers, so the client downloads over
  plain HTTP.

Errors carry the Hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``). Revisions are branches, tags or 40-hex commits. ``drop(file, n)`` makes
the next ``n`` GETs of a file send half their body and close the socket.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest


def _import_hf_hub_from_a_clean_environment() -> None:
    # huggingface_hub reads HF_HUB_OFFLINE and HF_ENDPOINT once, at import. Import it here,
    # online and pointed nowhere, so neither the developer's shell nor the order of the tests
    # decides how it behaves; pcsep passes the live environment to every call itself.
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_ENDPOINT")}
    os.environ.pop("HF_HUB_OFFLINE", None)
    os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
    try:
        import huggingface_hub.constants  # noqa: F401
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_import_hf_hub_from_a_clean_environment()


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branches and tags
    token: str | None = None  # private when set


class FakeHub:
    """Repositories, a request log and failure switches, served over HTTP on 127.0.0.1."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.auth_headers: list[str | None] = []
        self._drops: dict[str, int] = {}
        self.down = False  # answer every request with 503
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.hub = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.ranges: list[str] = []  # Range headers received
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def commit(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        branch: str = "main",
        tags: tuple[str, ...] = (),
        token: str | None = None,
    ) -> str:
        """Add a commit holding exactly ``files``; move ``branch`` and ``tags`` to it."""
        repo = self.repos.setdefault(repo_id, Repo())
        repo.token = token or repo.token
        digest = hashlib.sha1(repo_id.encode() + str(len(repo.commits)).encode())
        for name in sorted(files):
            digest.update(name.encode() + hashlib.sha256(files[name]).digest())
        sha = digest.hexdigest()
        repo.commits[sha] = dict(files)
        for ref in (branch, *tags):
            repo.refs[ref] = sha
        return sha

    def drop(self, filename: str, times: int = 1) -> None:
        """Cut the next ``times`` GET bodies of ``filename`` in half, then close the socket."""
        with self.lock:
            self._drops[filename] = times

    def take_drop(self, filename: str) -> bool:
        with self.lock:
            left = self._drops.get(filename, 0)
            if left:
                self._drops[filename] = left - 1
            return left > 0

    def count(self, method: str | None = None, contains: str = "") -> int:
        """Requests logged so far, optionally filtered by method and a path fragment."""
        return sum(1 for m, p in self.requests if (method is None or m == method) and contains in p)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        pass

    @property
    def hub(self) -> FakeHub:
        return self.server.hub  # type: ignore[attr-defined]

    def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
        self._route(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._route(body=True)

    # -- routing ---------------------------------------------------------------------------
    def _route(self, body: bool) -> None:
        path = urlsplit(self.path).path
        with self.hub.lock:
            self.hub.requests.append((self.command, path))
            self.hub.auth_headers.append(self.headers.get("authorization"))
        if self.hub.down:
            return self._send(503, b'{"error": "down"}', {"Content-Type": "application/json"})
        parts = path.split("/")[1:]
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id = f"{parts[2]}/{parts[3]}"
            rest = parts[4:]
            if not rest:
                return self._info(repo_id, "main")
            if rest[0] == "revision" and len(rest) == 2:
                return self._info(repo_id, unquote(rest[1]))
            if rest[0] == "tree" and len(rest) >= 2:
                return self._tree(repo_id, unquote(rest[1]))
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id = f"{parts[0]}/{parts[1]}"
            filename = unquote("/".join(parts[4:]))
            return self._file(repo_id, unquote(parts[3]), filename, body)
        self._send(404, b"not found", {})

    def _lookup(self, repo_id: str, rev: str) -> tuple[str, dict[str, bytes]] | None:
        repo = self.hub.repos.get(repo_id)
        auth = self.headers.get("authorization")
        if repo is None or (repo.token and auth != f"Bearer {repo.token}"):
            status = 401 if repo is not None else 404
            self._error(status, "RepoNotFound", "Repository not found")
            return None
        sha = rev if rev in repo.commits else repo.refs.get(rev)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None
        return sha, repo.commits[sha]

    def _info(self, repo_id: str, rev: str) -> None:
        found = self._lookup(repo_id, rev)
        if found is None:
            return
        sha, files = found
        siblings = [
            {"rfilename": n, "size": len(d), "blobId": _git_oid(d)}
            for n, d in sorted(files.items())
        ]
        info = {
            "_id": sha[:24],
            "id": repo_id,
            "modelId": repo_id,
            "sha": sha,
            "private": bool(self.hub.repos[repo_id].token),
            "lastModified": "2025-01-01T00:00:00.000Z",
            "tags": [],
            "siblings": siblings,
        }
        self._json(info, sha)

    def _tree(self, repo_id: str, rev: str) -> None:
        found = self._lookup(repo_id, rev)
        if found is None:
            return
        sha, files = found
        entries = [
            {"type": "file", "oid": _git_oid(d), "size": len(d), "path": n}
            for n, d in sorted(files.items())
        ]
        self._json(entries, sha)

    def _file(self, repo_id: str, rev: str, filename: str, body: bool) -> None:
        found = self._lookup(repo_id, rev)
        if found is None:
            return
        sha, files = found
        if filename not in files:
            return self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": sha})
        data = files[filename]
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        status, start, end = 200, 0, len(data)
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            self.hub.ranges.append(wanted)
            first, _, last = wanted[len("bytes=") :].partition("-")
            start = int(first)
            end = int(last) + 1 if last else len(data)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(data)}"
        chunk = data[start:end]
        if body and self.hub.take_drop(filename):
            self._send_headers(status, len(chunk), headers)
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(status, chunk if body else b"", headers, length=len(chunk))

    # -- responses -------------------------------------------------------------------------
    def _json(self, obj: object, sha: str) -> None:
        data = json.dumps(obj).encode()
        self._send(200, data, {"Content-Type": "application/json", "X-Repo-Commit": sha})

    def _error(self, status: int, code: str, message: str, extra: dict | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, **(extra or {})}
        headers["Content-Type"] = "application/json"
        self._send(status, json.dumps({"error": message}).encode(), headers)

    def _send_headers(self, status: int, length: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(
        self, status: int, data: bytes, headers: dict[str, str], length: int | None = None
    ) -> None:
        self._send_headers(status, len(data) if length is None else length, headers)
        if self.command != "HEAD" and data:
            self.wfile.write(data)


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fresh HF_HOME, pcsep config dir and bundled-models dir per test; no token, online."""
    for name in (
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_OFFLINE",
        "HF_ENDPOINT",
        "PCSEP_MODEL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("PCSEP_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "bundled").mkdir()
    monkeypatch.setenv("PCSEP_BUNDLED_DIR", str(tmp_path / "bundled"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # An unroutable endpoint by default: a test that reaches the network by mistake fails.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    return tmp_path


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running local Hub; ``HF_ENDPOINT`` points at it."""
    server = FakeHub()
    server.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    try:
        yield server
    finally:
        server.stop()


CARD = """# tiny-test

A randomly initialised model for tests.

## Evaluation

| instrument | SDR | SIR |
|---|---|---|
| violin | 5.1 | 9.0 |
| overall | 4.0 | 8.0 |
"""


@pytest.fixture
def make_model(tmp_path: Path):  # noqa: ANN201 - returns a factory
    """Factory: a tiny random model saved by ``save_pretrained`` (+ a card) in ``tmp_path``."""

    def make(name: str = "tiny", seed: int = 0, conditioning: str = "labels", **audio) -> Path:
        import dataclasses

        import torch

        from pcsep_cli.nets.model import SeparationNet
        from pcsep_cli.train.config import load_train_config

        cfg = load_train_config("tiny").model
        cfg = dataclasses.replace(cfg, conditioning=conditioning)
        if audio:
            cfg = dataclasses.replace(cfg, audio=dataclasses.replace(cfg.audio, **audio))
        torch.manual_seed(seed)
        net = SeparationNet(cfg)
        with torch.no_grad():  # FiLM starts at zero; random weights make every layer matter
            for p in net.parameters():
                p.add_(0.05 * torch.randn_like(p))
        out = net.save_pretrained(tmp_path / "made" / name)
        (out / "README.md").write_text(CARD)
        return out

    return make


def dir_files(directory: Path) -> dict[str, bytes]:
    """A model directory's files as a Hub commit."""
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.fixture
def as_files():  # noqa: ANN201
    return dir_files
