"""The local Hub server bounds what a client can make it do: bodies, threads, and where tokens come from."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from mmzoo.testing.hub_server import HubServer

pytestmark = pytest.mark.hub

ALICE, BOB = "hf_aliceToken000000000000000000000000", "hf_bobToken00000000000000000000000000"
REPO_ROOT = Path(__file__).resolve().parents[2]


def raw_request(url: str, head: str, body: bytes = b"", timeout: float = 5.0) -> tuple[int, bytes]:
    """Send ``head`` (request line and headers) and ``body``; return the status and the whole answer.

    The socket times out after ``timeout`` seconds: a server that waits for a body never sent fails.
    """
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        while True:  # the server closes the connection after its answer
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if b"\r\n\r\n" not in answer:
                    raise
                break
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def post_head(path: str, length: int, token: str | None = None, extra: str = "") -> str:
    auth = f"Authorization: Bearer {token}\n" if token else ""
    return f"POST {path} HTTP/1.1\nHost: x\n{auth}Content-Length: {length}\n{extra}"


@pytest.fixture
def server():
    with HubServer(tokens={ALICE: "alice", BOB: "bob"}, max_body_bytes=4096) as hub:
        HfApi(endpoint=hub.url, token=ALICE).create_repo("alice/model")
        yield hub


def test_anonymous_bodies_are_refused_before_they_are_read(server):
    status, _ = raw_request(server.url, post_head("/api/repos/create", 10**12))
    assert status == 401
    status, _ = raw_request(server.url, post_head("/api/models/alice/model/commit/main", 10**12))
    assert status == 401


def test_a_body_for_a_repo_the_caller_may_not_write_is_refused_before_it_is_read(server):
    status, _ = raw_request(server.url, post_head("/api/models/alice/model/commit/main", 10**12, BOB))
    assert status == 403
    status, _ = raw_request(server.url, post_head("/alice/model.git/info/lfs/objects/batch", 10**12, BOB))
    assert status == 403


def test_bodies_over_the_limit_are_refused_before_they_are_read(server):
    status, answer = raw_request(server.url, post_head("/api/models/alice/model/commit/main", 10**12, ALICE))
    assert status == 413 and b"over the limit of 4096 bytes" in answer
    chunked = f"POST /api/repos/create HTTP/1.1\nHost: x\nAuthorization: Bearer {ALICE}\nTransfer-Encoding: chunked\n"
    status, _ = raw_request(server.url, chunked, b"2000\r\n" + b"x" * 0x2000 + b"\r\n")
    assert status == 413
    ok, _ = raw_request(server.url, post_head("/api/repos/create", 18, ALICE), b'{"name": "second"}')
    assert ok == 200 and server.repo("alice/second")


def test_an_lfs_upload_may_not_exceed_what_was_announced(server):
    batch = {"operation": "upload", "transfers": ["basic"], "hash_algo": "sha256",
             "objects": [{"oid": "0" * 64, "size": 10}]}
    body = json.dumps(batch).encode()
    status, answer = raw_request(
        server.url, post_head("/alice/model.git/info/lfs/objects/batch", len(body), ALICE), body
    )
    assert status == 200
    href = json.loads(answer.split(b"\r\n\r\n", 1)[1])["objects"][0]["actions"]["upload"]["href"]
    upload = href.removeprefix(server.url)
    status, answer = raw_request(server.url, f"PUT {upload} HTTP/1.1\nHost: x\nContent-Length: {10**12}\n")
    assert status == 413
    too_big = [{"oid": "1" * 64, "size": server.max_file_bytes + 1}]
    body = json.dumps({**batch, "objects": too_big}).encode()
    status, _ = raw_request(server.url, post_head("/alice/model.git/info/lfs/objects/batch", len(body), ALICE), body)
    assert status == 413


def test_requests_run_on_a_bounded_pool_and_overflow_is_answered_503():
    with HubServer(tokens={ALICE: "alice"}, workers=2, max_pending=4, request_timeout=3.0) as hub:
        host, port = hub.url.removeprefix("http://").split(":")
        before = threading.active_count()
        idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(12)]
        try:
            time.sleep(0.5)
            assert threading.active_count() <= before + 2  # silent clients hold at most the 2 workers
            refused = 0
            for sock in idle:
                sock.settimeout(0.2)
                try:
                    refused += sock.recv(64).startswith(b"HTTP/1.1 503")
                except TimeoutError:
                    pass
            assert refused == 12 - 4  # 4 may wait (2 served, 2 queued), the rest are told to retry
        finally:
            for sock in idle:
                sock.close()
        # the silent clients are dropped after request_timeout: the pool serves again
        started = time.monotonic()
        assert HfApi(endpoint=hub.url, token=ALICE).whoami()["name"] == "alice"
        assert time.monotonic() - started < 10


def test_the_command_line_server_takes_tokens_from_a_file_and_the_environment(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# local users\n{ALICE}=alice\n{BOB}=bob:read\n")
    env = {**os.environ, "MMZOO_HUB_TOKENS": "hf_fromTheEnvironment000000000=carol",
           "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmzoo.testing.hub_server", "--tokens-file", str(tokens), "--org", "team=alice"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        url = proc.stdout.readline().split()[0].removeprefix("HF_ENDPOINT=")
        assert HfApi(endpoint=url, token=ALICE).whoami()["orgs"] == [{"type": "org", "name": "team"}]
        assert HfApi(endpoint=url, token="hf_fromTheEnvironment000000000").whoami()["name"] == "carol"
        reader = HfApi(endpoint=url, token=BOB)
        assert reader.whoami()["auth"]["accessToken"]["role"] == "read"
        command_line = Path(f"/proc/{proc.pid}/cmdline").read_bytes() if sys.platform == "linux" else b""
        assert ALICE.encode() not in command_line and b"hf_from" not in command_line
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    refused = subprocess.run([sys.executable, "-m", "mmzoo.testing.hub_server", "--token", f"{ALICE}=alice"],
                             capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 2 and "unrecognized arguments: --token" in refused.stderr
    tokens.write_text("no-user-here\n")
    bad = subprocess.run([sys.executable, "-m", "mmzoo.testing.hub_server", "--tokens-file", str(tokens)],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "entry 1 is not TOKEN=USER" in bad.stderr and "no-user-here" not in bad.stderr
