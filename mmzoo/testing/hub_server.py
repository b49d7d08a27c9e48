"""A local Hugging Face Hub on 127.0.0.1, for testing Hub code with the real ``huggingface_hub`` client.

It speaks the subset of the Hub's HTTP protocol the client and transformers use (see HUB_PROTOCOL.md):
repo creation, model info, tree listings with pagination, file resolution (HEAD/GET, ranges), preupload,
the LFS batch/upload/verify dance, ndjson commits, branches, tags, refs, commit history, and the error
headers (``X-Error-Code``) the client turns into its exception classes. State is kept in memory with
git-compatible object ids (:mod:`mmzoo.testing.hub_git`); the endpoints are in
:mod:`mmzoo.testing.hub_endpoints`.

Auth: tokens are given at construction (``tokens={"hf_x": "alice"}``). A private repo is visible only to
requests carrying a known token; an unknown token is refused with 401; with ``require_token=True`` every
write needs a token with write access. Use::

    with HubServer(tokens={"hf_test": "tester"}) as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        ...

or ``python -m mmzoo.testing.hub_server --port 8000``. Clients must set ``HF_HUB_DISABLE_XET=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from mmzoo.testing.hub_endpoints import ReadEndpoints, WriteEndpoints
from mmzoo.testing.hub_git import HubRequestError, HubState, Repo

API_ACTIONS = {"revision", "tree", "paths-info", "refs", "commits", "preupload", "commit", "branch", "tag", "settings"}
LFS_JSON = "application/vnd.git-lfs+json"


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered (the token itself is never recorded)."""

    method: str
    path: str
    status: int
    user: str | None


@dataclass(frozen=True)
class _Caller:
    user: str | None
    can_write: bool


def _split_repo(segments: list[str], known) -> tuple[str, list[str]]:
    """Split ``ns/name/action/...`` (or a legacy one-part id) into the repo id and the rest."""
    if len(segments) >= 2 and (len(segments) == 2 or segments[2] in API_ACTIONS or known("/".join(segments[:2]))):
        return "/".join(segments[:2]), segments[2:]
    return segments[0], segments[1:]


class _Handler(ReadEndpoints, WriteEndpoints, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # ---- plumbing -------------------------------------------------------------------------------
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - silence the stderr access log
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self, method: str) -> None:
        self._status = 500
        self._caller = _Caller(None, False)
        body = self._read_body() if method in ("POST", "PUT", "DELETE") else b""
        split = urlsplit(self.path)
        self._query = parse_qs(split.query)
        segments = [unquote(s) for s in split.path.strip("/").split("/")] if split.path.strip("/") else []
        try:
            self._caller = self._authenticate()
            self._route(method, segments, body)
        except HubRequestError as e:
            self._error(e)
        except (ValueError, KeyError, TypeError) as e:
            self._error(HubRequestError(400, f"Bad request: {e}"))
        finally:
            self.server.record(RequestRecord(method, split.path, self._status, self._caller.user))

    def _authenticate(self) -> _Caller:
        header = self.headers.get("Authorization", "")
        if not header:
            return _Caller(None, not self.server.require_token)
        token = header.removeprefix("Bearer ").strip()
        user = self.server.tokens.get(token)
        if user is None:
            raise HubRequestError(401, "Invalid credentials in Authorization header")
        return _Caller(user, token not in self.server.read_only_tokens)

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self._status = status
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _json(self, data, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, e: HubRequestError) -> None:
        headers = {"X-Error-Message": e.message.encode("ascii", "replace").decode(), **e.headers}
        if e.code:
            headers["X-Error-Code"] = e.code
        self._send(e.status, json.dumps({"error": e.message}).encode(), headers, head=self.command == "HEAD")

    # ---- routing --------------------------------------------------------------------------------
    def _route(self, method: str, seg: list[str], body: bytes) -> None:
        s = self.server
        if seg[:1] == ["api"]:
            rest = seg[1:]
            if rest == ["agent-harnesses"]:
                return self._json({"standardEnvVars": [], "harnesses": {}})
            if rest == ["whoami-v2"]:
                return self._whoami()
            if rest == ["validate-yaml"] and method == "POST":
                return self._validate_yaml(json.loads(body))
            if rest[:1] == ["repos"] and rest[1:] in (["create"], ["delete"]):
                return (
                    self._create_repo(json.loads(body)) if rest[1] == "create" else self._delete_repo(json.loads(body))
                )
            if rest[:1] in (["models"], ["datasets"], ["spaces"]) and len(rest) >= 2:
                repo_type = rest[0][:-1]
                repo_id, action = _split_repo(rest[1:], lambda r: s.state.find(repo_type, r) is not None)
                return self._repo_api(method, repo_type, repo_id, action, body)
        if seg[:2] == ["_lfs", "upload"] and method == "PUT" and len(seg) == 3:
            return self._lfs_put(seg[2], body)
        repo_type, seg = ("dataset", seg[1:]) if seg[:1] == ["datasets"] else ("model", seg)
        repo_type, seg = ("space", seg[1:]) if seg[:1] == ["spaces"] and repo_type == "model" else (repo_type, seg)
        git = next((i for i, p in enumerate(seg[:2]) if p.endswith(".git")), None)
        if git is not None and seg[git + 1 : git + 4] == ["info", "lfs", "objects"] and method == "POST":
            repo_id = "/".join(seg[:git] + [seg[git][:-4]])
            return self._lfs_api(repo_type, repo_id, seg[git + 4 :], json.loads(body))
        for i in (1, 2):
            if len(seg) > i + 2 and seg[i] == "resolve" and method in ("GET", "HEAD"):
                repo_id = "/".join(seg[:i])
                if i == 1 and s.state.find(repo_type, "/".join(seg[:2])) is not None:
                    continue
                return self._resolve(method, repo_type, repo_id, seg[i + 1], "/".join(seg[i + 2 :]))
        raise HubRequestError(404, f"Not found: {method} {self.path}")

    def _repo(self, repo_type: str, repo_id: str, *, write: bool = False) -> Repo:
        repo = self.server.state.find(repo_type, repo_id)
        caller = self._caller
        if write and caller.user is None and not caller.can_write:
            raise HubRequestError(401, "You must be authenticated with a token to write to the Hub")
        if repo is None or (repo.private and caller.user is None):
            status = 401 if caller.user is None else 404
            raise HubRequestError(status, "Repository not found", "RepoNotFound")
        if write and not caller.can_write:
            raise HubRequestError(403, f"Your token has no write access to {repo_id}")
        return repo

    def _repo_api(self, method: str, repo_type: str, repo_id: str, action: list[str], body: bytes) -> None:
        name = action[0] if action else None
        arg = action[1] if len(action) > 1 else None
        with self.server.state.lock:
            if method == "GET" and name in (None, "revision"):
                return self._info(self._repo(repo_type, repo_id), arg or "main")
            if method == "GET" and name == "tree" and arg:
                return self._tree(self._repo(repo_type, repo_id), arg, "/".join(action[2:]))
            if method == "POST" and name == "paths-info" and arg:
                return self._paths_info(self._repo(repo_type, repo_id), arg, body)
            if method == "GET" and name == "refs":
                return self._refs(self._repo(repo_type, repo_id))
            if method == "GET" and name == "commits" and arg:
                return self._commits(self._repo(repo_type, repo_id), arg)
            if method == "POST" and name == "preupload" and arg:
                return self._preupload(self._repo(repo_type, repo_id, write=True), arg, json.loads(body))
            if method == "POST" and name == "commit" and arg:
                return self._commit(self._repo(repo_type, repo_id, write=True), arg, body)
            if name == "branch" and arg and method in ("POST", "DELETE"):
                return self._branch(self._repo(repo_type, repo_id, write=True), method, arg, body)
            if name == "tag" and arg and method in ("POST", "DELETE"):
                return self._tag(self._repo(repo_type, repo_id, write=True), method, arg, body)
            if method == "PUT" and name == "settings":
                repo = self._repo(repo_type, repo_id, write=True)
                settings = json.loads(body or b"{}")
                if "private" in settings:
                    repo.private = bool(settings["private"])
                return self._json({"private": repo.private})
        raise HubRequestError(404, f"Not found: {method} {self.path}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HubServer:
    """A local Hub. ``start()``/``stop()`` or use as a context manager; ``url`` is its HF_ENDPOINT."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: dict[str, str] | None = None,
        read_only_tokens: set[str] | frozenset[str] = frozenset(),
        require_token: bool = False,
        page_size: int = 1000,
    ) -> None:
        self.host, self.port = host, port
        self.tokens = dict(tokens or {})
        self.read_only_tokens = set(read_only_tokens)
        self.require_token = require_token
        self.page_size = page_size
        self.state = HubState()
        self.requests: list[RequestRecord] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("HubServer is not started")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> HubServer:
        httpd = _Server((self.host, self.port), _Handler)
        httpd.tokens, httpd.read_only_tokens = self.tokens, self.read_only_tokens
        httpd.require_token, httpd.page_size, httpd.state = self.require_token, self.page_size, self.state
        httpd.pending_uploads, httpd.content_override = {}, {}
        httpd.record = self.requests.append
        httpd.url = f"http://{self.host}:{httpd.server_address[1]}"
        httpd.repo_url = lambda t, r: f"{httpd.url}/{'' if t == 'model' else t + 's/'}{r}"
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="local-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def add_token(self, token: str, user: str, *, write: bool = True) -> None:
        """Accept ``token`` as ``user`` (read-only unless ``write``)."""
        self.tokens[token] = user
        (self.read_only_tokens.discard if write else self.read_only_tokens.add)(token)

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        """The state of a repo, for assertions in tests."""
        repo = self.state.find(repo_type, repo_id)
        if repo is None:
            raise KeyError(repo_id)
        return repo

    def serve_corrupted(self, repo_id: str, path: str, data: bytes, revision: str = "main") -> None:
        """From now on, serve ``data`` in place of ``path``'s content (a broken mirror or CDN) while every
        header (ETag, size, commit) still describes the original file."""
        repo = self.repo(repo_id)
        entry = repo.resolve(revision).files[path]
        self._httpd.content_override[(repo.repo_type, repo_id, entry.etag)] = data


def client_env(url: str, hf_home: str | os.PathLike, token: str | None = None) -> dict[str, str]:
    """Environment variables that point a Hub client (in this or a child process) at a local Hub."""
    env = {
        "HF_ENDPOINT": url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(Path(hf_home) / "hub"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    }
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def main(argv: list[str] | None = None) -> int:
    """Run a local Hub in the foreground: ``python -m mmzoo.testing.hub_server --port 8000``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", action="append", default=[], metavar="TOKEN=USER")
    parser.add_argument("--require-token", action="store_true")
    args = parser.parse_args(argv)
    tokens = dict(t.split("=", 1) for t in args.token)
    with HubServer(port=args.port, tokens=tokens, require_token=args.require_token) as hub:
        print(f"HF_ENDPOINT={hub.url} HF_HUB_DISABLE_XET=1", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
