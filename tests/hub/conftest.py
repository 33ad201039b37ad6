"""A local server that speaks the Hugging Face Hub's HTTP protocol, and an isolated environment.

The real ``huggingface_hub`` client talks to it through ``HF_ENDPOINT``: no network, no mock.
It serves what ``snapshot_download`` uses (huggingface_hub 2.x):

- ``GET /api/models/{owner}/{name}[/revision/{rev}]``: ``sha`` and ``siblings``;
- ``GET /api/models/{owner}/{name}/tree/{rev}``: the file list of a commit;
- ``GET /api/models/{owner}/{name}/refs``: branches and tags;
- ``HEAD`` / ``GET /{owner}/{name}/resolve/{rev}/{file}``: ``X-Repo-Commit``, ``ETag``,
  ``Content-Length``, ``Range`` requests (206). No Xet headers, so the client downloads over
  plain HTTP.

Errors carry the Hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``). Revisions are branches, tags or 40-hex commits. ``drop(file, n)`` makes
the next ``n`` GETs of a file send half their body and close the socket.

It also takes what the upload API sends (``create_repo``, ``create_branch``,
``create_commit``), and stores it as the Hub does: a commit is a new sha on its branch that
holds the parent's files with the commit's changes, so a later download sees them.

- ``POST /api/repos/create``: a new repository starts with one commit on ``main`` holding the
  Hub's default ``.gitattributes``; 409 when it exists;
- ``POST /api/models/{repo}/branch/{branch}``: from ``startingPoint`` or ``main``; 409 when
  it exists;
- ``POST /api/validate-yaml``: a README's YAML block must parse to a mapping (else 400);
- ``POST /api/models/{repo}/preupload/{branch}``: ``uploadMode`` is ``lfs`` for paths the
  branch's ``.gitattributes`` sends to LFS (``*.safetensors`` ...), else ``regular``, with the
  ``oid`` of the file already there (so unchanged files are not sent again);
- ``POST /{repo}.git/info/lfs/objects/batch``, ``PUT`` of the object, ``POST`` verify: the
  LFS basic transfer (the sha256 of what is put must be its oid);
- ``POST /api/models/{repo}/commit/{branch}``: the NDJSON payload (``header``, ``file`` in
  base64, ``lfsFile`` naming an uploaded object, ``deletedFile``); a regular file holding a
  NUL byte is refused as the Hub refuses binary files outside LFS.

Writes need ``Authorization: Bearer <token>`` of a user made with ``add_user``: none → 401,
an unknown token → 401 ``X-Error-Message: Invalid credentials in Authorization header``, a
repository whose owner is another user → 403. The server has no Xet storage, so ``hub`` runs
the client as ``HF_HUB_DISABLE_XET=1`` does: large files go through LFS.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml


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


# What the Hub writes into a new repository (the first lines of its default .gitattributes).
GITATTRIBUTES = b"""*.bin filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
"""


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branches and tags
    token: str | None = None  # private when set
    messages: dict[str, str] = field(default_factory=dict)  # commit -> summary
    parents: dict[str, str | None] = field(default_factory=dict)
    branches: set[str] = field(default_factory=set)

    def lfs_paths(self, sha: str) -> list[str]:
        """Patterns that the commit's ``.gitattributes`` sends to LFS."""
        text = self.commits[sha].get(".gitattributes", b"").decode()
        return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line]


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
        self.users: dict[str, str] = {}  # token -> user name
        self.lfs: dict[str, bytes] = {}  # uploaded LFS objects by sha256
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
        message: str = "",
    ) -> str:
        """Add a commit holding exactly ``files``; move ``branch`` and ``tags`` to it."""
        repo = self.repos.setdefault(repo_id, Repo())
        repo.token = token or repo.token
        digest = hashlib.sha1(repo_id.encode() + str(len(repo.commits)).encode())
        for name in sorted(files):
            digest.update(name.encode() + hashlib.sha256(files[name]).digest())
        sha = digest.hexdigest()
        repo.parents[sha] = repo.refs.get(branch)
        repo.commits[sha] = dict(files)
        repo.messages[sha] = message
        repo.branches.add(branch)
        for ref in (branch, *tags):
            repo.refs[ref] = sha
        return sha

    def add_user(self, name: str) -> str:
        """A user who may write to repositories under ``name/``; returns their token."""
        token = f"hf_{name}_" + hashlib.sha1(name.encode()).hexdigest()[:12]
        self.users[token] = name
        return token

    def history(self, repo_id: str, branch: str = "main") -> list[str]:
        """Commit summaries of a branch, newest first."""
        repo = self.repos[repo_id]
        out, sha = [], repo.refs.get(branch)
        while sha is not None:
            out.append(repo.messages.get(sha, ""))
            sha = repo.parents.get(sha)
        return out

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

    def do_POST(self) -> None:  # noqa: N802
        self._write_route()

    def do_PUT(self) -> None:  # noqa: N802
        self._write_route()

    # -- routing ---------------------------------------------------------------------------
    def _logged(self) -> str | None:
        """The request's path, logged; None (503 sent) while the Hub is down."""
        path = urlsplit(self.path).path
        with self.hub.lock:
            self.hub.requests.append((self.command, path))
            self.hub.auth_headers.append(self.headers.get("authorization"))
        if self.hub.down:
            self._read_body()
            self._send(503, b'{"error": "down"}', {"Content-Type": "application/json"})
            return None
        return path

    def _route(self, body: bool) -> None:
        path = self._logged()
        if path is None:
            return
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
            if rest == ["refs"]:
                return self._refs(repo_id)
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

    def _refs(self, repo_id: str) -> None:
        found = self._lookup(repo_id, "main")
        if found is None:
            return
        repo = self.hub.repos[repo_id]
        refs: dict[str, list] = {"branches": [], "converts": [], "tags": []}
        for name, sha in sorted(repo.refs.items()):
            kind = "branches" if name in repo.branches else "tags"
            prefix = "refs/heads/" if kind == "branches" else "refs/tags/"
            refs[kind].append({"name": name, "ref": prefix + name, "targetCommit": sha})
        self._json(refs, found[0])

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

    # -- uploads ---------------------------------------------------------------------------
    def _write_route(self) -> None:
        path = self._logged()
        if path is None:
            return
        data = self._read_body()
        parts = [unquote(p) for p in path.split("/")[1:]]
        if parts == ["api", "repos", "create"]:
            return self._create_repo(json.loads(data))
        if parts == ["api", "validate-yaml"]:
            return self._validate_yaml(json.loads(data)["content"])
        if parts[:2] == ["api", "models"] and len(parts) == 6:
            repo_id, action, rev = f"{parts[2]}/{parts[3]}", parts[4], parts[5]
            if action == "branch":
                return self._create_branch(repo_id, rev, json.loads(data or b"{}"))
            if action == "preupload":
                return self._preupload(repo_id, rev, json.loads(data))
            if action == "commit":
                return self._commit(repo_id, rev, data)
        if (
            len(parts) == 6
            and parts[1].endswith(".git")
            and parts[2:]
            == [
                "info",
                "lfs",
                "objects",
                "batch",
            ]
        ):
            return self._lfs_batch(f"{parts[0]}/{parts[1][: -len('.git')]}", json.loads(data))
        if parts[:1] == ["lfs-objects"] and len(parts) == 3:
            return self._lfs_object(parts[1], parts[2], data)
        self._send(404, b"not found", {})

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                chunk = self.rfile.read(size)
                self.rfile.readline()  # the CRLF after each chunk
                if size == 0:
                    return b"".join(chunks)
                chunks.append(chunk)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _writer(self, repo_id: str | None) -> str | None:
        """The user a write comes from; None when refused (401 or 403 sent)."""
        auth = self.headers.get("authorization") or ""
        if not auth.startswith("Bearer "):
            self._error(401, None, "You must be authenticated to write")
            return None
        user = self.hub.users.get(auth.removeprefix("Bearer "))
        if user is None:
            self._error(401, None, "Invalid credentials in Authorization header")
            return None
        if repo_id is not None and repo_id.split("/")[0] != user:
            self._error(403, None, f"You don't have the rights to write to {repo_id}")
            return None
        return user

    def _branch_head(self, repo_id: str, branch: str) -> tuple[Repo, str] | None:
        """A writable branch's repository and head; None when an error was sent."""
        if self._writer(repo_id) is None:
            return None
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if branch not in repo.branches:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {branch}")
            return None
        return repo, repo.refs[branch]

    def _create_repo(self, payload: dict) -> None:
        user = self._writer(None)
        if user is None:
            return
        repo_id = f"{payload.get('organization') or user}/{payload['name']}"
        if repo_id.split("/")[0] != user:
            msg = f"You don't have the rights to create a model under the namespace {repo_id}"
            return self._error(403, None, msg)
        url = f"{self.hub.url}/{repo_id}"
        if repo_id in self.hub.repos:
            body = json.dumps({"error": "You already created this model repo", "url": url})
            return self._send(409, body.encode(), {"Content-Type": "application/json"})
        private = payload.get("visibility") == "private" or payload.get("private") is True
        token = self.headers["authorization"].removeprefix("Bearer ") if private else None
        self.hub.commit(repo_id, {".gitattributes": GITATTRIBUTES}, message="initial commit")
        self.hub.repos[repo_id].token = token
        self._json({"url": url, "name": repo_id, "id": repo_id}, "")

    def _create_branch(self, repo_id: str, branch: str, payload: dict) -> None:
        found = self._branch_head(repo_id, "main")
        if found is None:
            return
        repo, head = found
        if branch in repo.refs:
            return self._error(409, None, f"Reference refs/heads/{branch} already exists")
        start = payload.get("startingPoint")
        sha = head if start is None else (start if start in repo.commits else repo.refs.get(start))
        if sha is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {start}")
        repo.refs[branch] = sha
        repo.branches.add(branch)
        self._json({}, sha)

    def _validate_yaml(self, content: str) -> None:
        errors = []
        if content.startswith("---"):
            block = content.split("\n---", 1)[0].removeprefix("---")
            try:
                meta = yaml.safe_load(block)
            except yaml.YAMLError as err:
                meta, errors = {}, [{"message": f"Invalid YAML: {err}"}]
            if not isinstance(meta, dict | None):
                errors.append({"message": "metadata must be a mapping"})
        status = 400 if errors else 200
        body = json.dumps({"errors": errors, "warnings": []}).encode()
        self._send(status, body, {"Content-Type": "application/json"})

    def _preupload(self, repo_id: str, branch: str, payload: dict) -> None:
        found = self._branch_head(repo_id, branch)
        if found is None:
            return
        repo, head = found
        patterns, files = repo.lfs_paths(head), repo.commits[head]
        answer = []
        for entry in payload["files"]:
            path = entry["path"]
            lfs = any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in patterns)
            old = files.get(path)
            oid = None
            if old is not None:
                oid = hashlib.sha256(old).hexdigest() if lfs else _git_oid(old)
            mode = "lfs" if lfs else "regular"
            answer.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json({"files": answer, "commitOid": head}, head)

    def _lfs_batch(self, repo_id: str, payload: dict) -> None:
        branch = (payload.get("ref") or {}).get("name", "main")
        if self._branch_head(repo_id, branch) is None:
            return
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs:
                base = f"{self.hub.url}/lfs-objects/{obj['oid']}"
                entry["actions"] = {
                    "upload": {"href": f"{base}/upload"},
                    "verify": {"href": f"{base}/verify"},
                }
            objects.append(entry)
        body = json.dumps({"transfer": "basic", "objects": objects}).encode()
        self._send(200, body, {"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_object(self, oid: str, action: str, data: bytes) -> None:
        if action == "upload" and self.command == "PUT":
            if hashlib.sha256(data).hexdigest() != oid:
                return self._error(400, None, "content does not match its sha256 oid")
            with self.hub.lock:
                self.hub.lfs[oid] = data
            return self._send(200, b"", {})
        if action == "verify" and self.command == "POST":
            if oid not in self.hub.lfs or len(self.hub.lfs[oid]) != json.loads(data)["size"]:
                return self._error(404, None, f"LFS object {oid} not found")
            return self._json({"success": True}, "")
        self._send(404, b"not found", {})

    def _commit(self, repo_id: str, branch: str, data: bytes) -> None:
        if parse_qs(urlsplit(self.path).query).get("create_pr"):
            return self._error(400, None, "this local Hub does not take pull requests")
        found = self._branch_head(repo_id, branch)
        if found is None:
            return
        repo, head = found
        files = dict(repo.commits[head])
        summary = ""
        for line in data.splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value["summary"]
                parent = value.get("parentCommit")
                if parent is not None and parent != head:
                    return self._error(412, None, f"parentCommit {parent} is not {branch}")
            elif key == "file":
                content = base64.b64decode(value["content"])
                if b"\0" in content:
                    msg = f"Your push was rejected because {value['path']} is binary: use LFS"
                    return self._error(400, None, msg)
                files[value["path"]] = content
            elif key == "lfsFile":
                if value["oid"] not in self.hub.lfs:
                    return self._error(422, None, f"LFS object {value['oid']} was not uploaded")
                files[value["path"]] = self.hub.lfs[value["oid"]]
            elif key == "deletedFile":
                files.pop(value["path"], None)
            else:
                return self._error(400, None, f"unknown commit operation {key}")
        with self.hub.lock:
            sha = self.hub.commit(repo_id, files, branch=branch, message=summary)
        url = f"{self.hub.url}/{repo_id}/commit/{sha}"
        self._json({"success": True, "commitOid": sha, "commitUrl": url}, sha)

    # -- responses -------------------------------------------------------------------------
    def _json(self, obj: object, sha: str) -> None:
        data = json.dumps(obj).encode()
        headers = {"Content-Type": "application/json"}
        if sha:
            headers["X-Repo-Commit"] = sha
        self._send(200, data, headers)

    def _error(
        self, status: int, code: str | None, message: str, extra: dict | None = None
    ) -> None:
        # The Hub names not-found errors with X-Error-Code; auth errors carry a message only.
        headers = {"X-Error-Message": message, **(extra or {})}
        if code is not None:
            headers["X-Error-Code"] = code
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
    # No token of the developer's (`hf auth login` writes one under ~/.cache) reaches a test:
    # the client reads the token file's path once, at import, so it is moved here too.
    import huggingface_hub.constants as hf_constants

    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    # An unroutable endpoint by default: a test that reaches the network by mistake fails.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    return tmp_path


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A running local Hub; ``HF_ENDPOINT`` points at it.

    It has no Xet storage: the client runs as with ``HF_HUB_DISABLE_XET=1`` (read once, at
    import, hence the constant too), so uploads take the LFS path the Hub offers without Xet.
    """
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
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
