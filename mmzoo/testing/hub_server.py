"""A local Hugging Face Hub on 127.0.0.1, for testing Hub code with the real ``huggingface_hub`` client.

It speaks the subset of the Hub's HTTP protocol the client and transformers use (see HUB_PROTOCOL.md):
repo creation, model info, tree listings with pagination, file resolution (HEAD/GET, ranges), preupload,
the LFS batch/upload/verify dance, ndjson commits, branches, tags, refs, commit history, and the error
headers (``X-Error-Code``) the client turns into its exception classes. State is kept in memory with
git-compatible object ids (:mod:`mmzoo.testing.hub_git`); the endpoints are in
:mod:`mmzoo.testing.hub_endpoints`, who may do what in :mod:`mmzoo.testing.hub_auth`.

What it is not: a production Hub, or a server to expose beyond this machine. It keeps everything in
memory, speaks plain HTTP, has no rate limits, no gating, no audit, and no protection against a
client that trickles bytes to hold a worker. It is meant for tests on one machine.

What it does enforce, so that tests of access control mean something:

- Auth: a token names a user (``tokens={"hf_x": "alice"}``, write access unless listed in
  ``read_only_tokens``); an unknown token is refused with 401, an anonymous write with 401.
- Ownership: a user writes only to its own namespace and its organisations' (``orgs={"team":
  ["alice", "bob"]}``; a namespace nobody owns is claimed by the first user to create a repo in it).
  A private repo is visible only to its namespace's members; public repos are readable by anyone.
- Bounded requests: a request body is refused (413) past ``max_body_bytes`` (an LFS upload past the
  size announced for it, itself at most ``max_file_bytes``) before it is read, and only after the
  caller's rights were checked. Requests run on a pool of ``workers`` threads; each connection
  serves one request (``Connection: close``); past ``max_pending`` waiting connections the server
  answers 503; a client silent for ``request_timeout`` seconds is dropped.

Fault injection, for tests of clients only: ``serve_corrupted`` (other bytes under the same metadata)
and ``serve_truncated`` (the next downloads of a file cut short).

Use::

    with HubServer(tokens={"hf_test": "tester"}) as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        ...

or ``MMZOO_HUB_TOKENS=hf_test=tester python -m mmzoo.testing.hub_server --port 8000`` (tokens come from
that variable or ``--tokens-file``, never from the command line, which other users can read).
Clients must set ``HF_HUB_DISABLE_XET=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from mmzoo.testing.hub_auth import AccessPolicy, Caller, tokens_from
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


def _split_repo(segments: list[str], known) -> tuple[str, list[str]]:
    """Split ``ns/name/action/...`` (or a legacy one-part id) into the repo id and the rest."""
    if len(segments) >= 2 and (len(segments) == 2 or segments[2] in API_ACTIONS or known("/".join(segments[:2]))):
        return "/".join(segments[:2]), segments[2:]
    return segments[0], segments[1:]


class _Handler(ReadEndpoints, WriteEndpoints, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # ---- plumbing -------------------------------------------------------------------------------
    def setup(self) -> None:
        self.timeout = self.server.request_timeout  # a silent client is dropped, freeing its worker
        super().setup()

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

    def _body(self, limit: int | None = None) -> bytes:
        """The request body, read on first call: endpoints call it only once the caller may send it.

        More than ``limit`` bytes (default ``max_body_bytes``) is refused with 413 before reading.
        """
        if self._read is not None:
            return self._read
        limit = self.server.max_body_bytes if limit is None else limit
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline(64).split(b";")[0].strip() or b"0", 16)
                total += size
                if total > limit:
                    raise HubRequestError(413, f"Request body over {limit} bytes")
                if size == 0:
                    while self.rfile.readline(8192).strip():  # trailers
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
            self._read = b"".join(chunks)
            return self._read
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise HubRequestError(400, "Bad Content-Length")
        if length > limit:
            raise HubRequestError(413, f"Request body of {length} bytes is over the limit of {limit} bytes")
        self._read = self.rfile.read(length)
        return self._read

    def _json_body(self) -> object:
        return json.loads(self._body() or b"{}")

    def _dispatch(self, method: str) -> None:
        self._status = 500
        self._caller = Caller(None, False)
        self._read: bytes | None = None
        self._recorded = False
        self.close_connection = True  # one request per connection: a worker is never held by an idle client
        split = urlsplit(self.path)
        self._query = parse_qs(split.query)
        segments = [unquote(s) for s in split.path.strip("/").split("/")] if split.path.strip("/") else []
        try:
            self._caller = self.server.policy.caller(self.headers.get("Authorization", ""))
            self._route(method, segments)
        except HubRequestError as e:
            self._error(e)
        except (ValueError, KeyError, TypeError) as e:
            self._error(HubRequestError(400, f"Bad request: {e}"))
        finally:
            if not self._recorded:
                self._record()

    def _record(self) -> None:
        # Recorded before the response leaves: a client that has its answer must find its request listed.
        self._recorded = True
        self.server.record(RequestRecord(self.command, urlsplit(self.path).path, self._status, self._caller.user))

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self._status = status
        if not self._recorded:
            self._record()
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {}), "Connection": "close"}
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
    def _route(self, method: str, seg: list[str]) -> None:
        s = self.server
        if seg[:1] == ["api"]:
            rest = seg[1:]
            if rest == ["agent-harnesses"]:
                return self._json({"standardEnvVars": [], "harnesses": {}})
            if rest == ["whoami-v2"]:
                return self._whoami()
            if rest == ["validate-yaml"] and method == "POST":
                if self._caller.user is None:
                    raise HubRequestError(401, "You must be authenticated to validate a card")
                return self._validate_yaml(self._json_body())
            if rest[:1] == ["repos"] and rest[1:] in (["create"], ["delete"]) and method in ("POST", "DELETE"):
                return self._create_repo() if rest[1] == "create" else self._delete_repo()
            if rest[:1] in (["models"], ["datasets"], ["spaces"]) and len(rest) >= 2:
                repo_type = rest[0][:-1]
                repo_id, action = _split_repo(rest[1:], lambda r: s.state.find(repo_type, r) is not None)
                return self._repo_api(method, repo_type, repo_id, action)
        if seg[:2] == ["_lfs", "upload"] and method == "PUT" and len(seg) == 3:
            return self._lfs_put(seg[2])
        repo_type, seg = ("dataset", seg[1:]) if seg[:1] == ["datasets"] else ("model", seg)
        repo_type, seg = ("space", seg[1:]) if seg[:1] == ["spaces"] and repo_type == "model" else (repo_type, seg)
        git = next((i for i, p in enumerate(seg[:2]) if p.endswith(".git")), None)
        if git is not None and seg[git + 1 : git + 4] == ["info", "lfs", "objects"] and method == "POST":
            repo_id = "/".join(seg[:git] + [seg[git][:-4]])
            return self._lfs_api(repo_type, repo_id, seg[git + 4 :])
        for i in (1, 2):
            if len(seg) > i + 2 and seg[i] == "resolve" and method in ("GET", "HEAD"):
                repo_id = "/".join(seg[:i])
                if i == 1 and s.state.find(repo_type, "/".join(seg[:2])) is not None:
                    continue
                return self._resolve(method, repo_type, repo_id, seg[i + 1], "/".join(seg[i + 2 :]))
        raise HubRequestError(404, f"Not found: {method} {self.path}")

    def _repo(self, repo_type: str, repo_id: str, *, write: bool = False) -> Repo:
        """The repo, if the caller may read it (or write it); the Hub's refusal otherwise."""
        return self.server.policy.check(self._caller, self.server.state.find(repo_type, repo_id), write=write)

    def _repo_api(self, method: str, repo_type: str, repo_id: str, action: list[str]) -> None:
        name = action[0] if action else None
        arg = action[1] if len(action) > 1 else None
        if method in ("POST", "PUT", "DELETE"):  # rights first, then the body, read outside the lock
            self._repo(repo_type, repo_id, write=name != "paths-info")
            self._body()
        with self.server.state.lock:
            if method == "GET" and name in (None, "revision"):
                return self._info(self._repo(repo_type, repo_id), arg or "main")
            if method == "GET" and name == "tree" and arg:
                return self._tree(self._repo(repo_type, repo_id), arg, "/".join(action[2:]))
            if method == "POST" and name == "paths-info" and arg:
                return self._paths_info(self._repo(repo_type, repo_id), arg)
            if method == "GET" and name == "refs":
                return self._refs(self._repo(repo_type, repo_id))
            if method == "GET" and name == "commits" and arg:
                return self._commits(self._repo(repo_type, repo_id), arg)
            if method == "POST" and name == "preupload" and arg:
                return self._preupload(self._repo(repo_type, repo_id, write=True), arg)
            if method == "POST" and name == "commit" and arg:
                return self._commit(self._repo(repo_type, repo_id, write=True), arg)
            if name == "branch" and arg and method in ("POST", "DELETE"):
                return self._branch(self._repo(repo_type, repo_id, write=True), method, arg)
            if name == "tag" and arg and method in ("POST", "DELETE"):
                return self._tag(self._repo(repo_type, repo_id, write=True), method, arg)
            if method == "PUT" and name == "settings":
                repo = self._repo(repo_type, repo_id, write=True)
                settings = self._json_body()
                if "private" in settings:
                    repo.private = bool(settings["private"])
                return self._json({"private": repo.private})
        raise HubRequestError(404, f"Not found: {method} {self.path}")


class _Server(HTTPServer):
    """An HTTP server whose requests run on a bounded pool of worker threads."""

    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, handler, *, workers: int, max_pending: int, request_timeout: float) -> None:
        super().__init__(address, handler)
        self.request_timeout = request_timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="local-hub")
        self._max_pending = max_pending
        self._pending = 0
        self._pending_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        with self._pending_lock:
            full = self._pending >= self._max_pending
            if not full:
                self._pending += 1
        if full:  # answered on the accepting thread, without reading anything from the client
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Retry-After: 1\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        self._pool.submit(self._work, request, client_address)

    def _work(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._pending_lock:
                self._pending -= 1

    def handle_error(self, request, client_address) -> None:
        pass  # a client that went away mid-request is not the server's error to print

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=True)


class HubServer:
    """A local Hub. ``start()``/``stop()`` or use as a context manager; ``url`` is its HF_ENDPOINT.

    :param tokens: ``{token: user}``; tokens have write access unless in ``read_only_tokens``.
    :param orgs: ``{organisation: [member users]}`` (see :mod:`mmzoo.testing.hub_auth`).
    :param max_body_bytes: the largest API request body (JSON, ndjson commits) accepted.
    :param max_file_bytes: the largest LFS object an upload may announce.
    :param workers: threads serving requests; ``max_pending`` connections may wait for one.
    :param request_timeout: seconds a client may stay silent before it is dropped.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: dict[str, str] | None = None,
        read_only_tokens: set[str] | frozenset[str] = frozenset(),
        orgs: dict[str, list[str] | set[str]] | None = None,
        page_size: int = 1000,
        max_body_bytes: int = 64 * 1024 * 1024,
        max_file_bytes: int = 2 * 1024 * 1024 * 1024,
        workers: int = 16,
        max_pending: int = 64,
        request_timeout: float = 30.0,
    ) -> None:
        self.host, self.port = host, port
        self.policy = AccessPolicy(tokens or {}, read_only_tokens, orgs)
        self.page_size = page_size
        self.max_body_bytes, self.max_file_bytes = max_body_bytes, max_file_bytes
        self.workers, self.max_pending, self.request_timeout = workers, max_pending, request_timeout
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
        httpd = _Server(
            (self.host, self.port), _Handler, workers=self.workers, max_pending=self.max_pending,
            request_timeout=self.request_timeout,
        )
        httpd.policy, httpd.page_size, httpd.state = self.policy, self.page_size, self.state
        httpd.max_body_bytes, httpd.max_file_bytes = self.max_body_bytes, self.max_file_bytes
        httpd.pending_uploads, httpd.content_override, httpd.truncations = {}, {}, {}
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
        self.policy.add_token(token, user, write=write)

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        """The state of a repo, for assertions in tests."""
        repo = self.state.find(repo_type, repo_id)
        if repo is None:
            raise KeyError(repo_id)
        return repo

    # ---- fault injection (tests only: a real Hub never does this on purpose) ---------------------------
    def serve_truncated(self, repo_id: str, path: str, *, keep_bytes: int | None = None, times: int = 1,
                        revision: str = "main") -> None:
        """Cut the next ``times`` downloads (GET) of ``path`` short after ``keep_bytes`` bytes (default: half),
        as a dropped connection or a broken proxy would, while the metadata (HEAD: size, ETag) still
        describes the whole file. Later downloads get the whole file again."""
        repo = self.repo(repo_id)
        entry = repo.resolve(revision).files[path]
        keep = entry.size // 2 if keep_bytes is None else keep_bytes
        if not 0 <= keep < entry.size:
            raise ValueError(f"keep_bytes must be in [0, {entry.size}) for {path}, got {keep_bytes}")
        self._httpd.truncations[(repo.repo_type, repo_id, entry.etag)] = [keep, times]

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
    """Run a local Hub in the foreground: ``python -m mmzoo.testing.hub_server --port 8000``.

    Tokens come from ``--tokens-file`` and the ``MMZOO_HUB_TOKENS`` environment variable (entries
    ``TOKEN=USER`` or ``TOKEN=USER:read``, one per line or comma-separated), never the command line.
    """
    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tokens-file", metavar="PATH", help="a file of TOKEN=USER[:read] lines")
    parser.add_argument("--org", action="append", default=[], metavar="ORG=USER[,USER...]",
                        help="an organisation and its members (repeatable)")
    args = parser.parse_args(argv)
    try:
        tokens, read_only = tokens_from(args.tokens_file)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    orgs = {}
    for entry in args.org:
        org, _, members = entry.partition("=")
        orgs[org.strip()] = [m.strip() for m in members.split(",") if m.strip()]
    with HubServer(port=args.port, tokens=tokens, read_only_tokens=read_only, orgs=orgs) as hub:
        print(f"HF_ENDPOINT={hub.url} HF_HUB_DISABLE_XET=1", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
