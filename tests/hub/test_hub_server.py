"""The local Hub server, driven by the real huggingface_hub client over real HTTP."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from mmzoo.testing.hub_server import HubServer
from tests.hub.support import READ_TOKEN, TOKEN, point_client_at

pytestmark = pytest.mark.hub


def http(method: str, url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """A raw request, to check what the server sends without a client in between."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def make_folder(root: Path, weights: bytes = b"\x00\x01" * 1500) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text('{"format": "test"}\n')
    (root / "model.safetensors").write_bytes(weights)
    (root / "notes").mkdir(exist_ok=True)
    (root / "notes" / "a.txt").write_text("first note\n")
    return root


def test_create_upload_download_round_trip(hub: HubServer, tmp_path: Path):
    api = HfApi()
    url = api.create_repo("org/demo")
    assert url == f"{hub.url}/org/demo"
    assert api.create_repo("org/demo", exist_ok=True) == url
    with pytest.raises(HfHubHTTPError) as exc:
        api.create_repo("org/demo")
    assert exc.value.response.status_code == 409

    folder = make_folder(tmp_path / "src")
    info = api.upload_folder(folder_path=folder, repo_id="org/demo", commit_message="add files")
    assert len(info.oid) == 40 and info.commit_url.endswith(info.oid)

    assert api.list_repo_files("org/demo") == [".gitattributes", "config.json", "model.safetensors", "notes/a.txt"]
    model = api.model_info("org/demo", files_metadata=True)
    assert model.sha == info.oid
    siblings = {s.rfilename: s for s in model.siblings}
    weights = (folder / "model.safetensors").read_bytes()
    assert siblings["model.safetensors"].lfs.sha256 == hashlib.sha256(weights).hexdigest()
    assert siblings["model.safetensors"].size == len(weights)
    assert siblings["config.json"].lfs is None

    # the binary file went through LFS batch + PUT + verify, the JSON file inline in the commit
    paths = [(r.method, r.path) for r in hub.requests]
    assert ("POST", "/org/demo.git/info/lfs/objects/batch") in paths
    assert ("POST", "/org/demo.git/info/lfs/objects/verify") in paths
    assert any(m == "PUT" and p.startswith("/_lfs/upload/") for m, p in paths)

    path = hf_hub_download("org/demo", "model.safetensors")
    assert Path(path).read_bytes() == weights
    assert f"snapshots/{info.oid}/" in Path(path).as_posix()
    snapshot = Path(snapshot_download("org/demo"))
    assert (snapshot / "notes" / "a.txt").read_text() == "first note\n"
    assert sorted(p.name for p in snapshot.iterdir()) == [".gitattributes", "config.json", "model.safetensors", "notes"]


def test_unchanged_files_are_not_uploaded_again(hub: HubServer, tmp_path: Path):
    api = HfApi()
    api.create_repo("org/same")
    folder = make_folder(tmp_path / "src")
    first = api.upload_folder(folder_path=folder, repo_id="org/same")
    again = api.upload_folder(folder_path=folder, repo_id="org/same")
    assert again.oid == first.oid  # preupload reported the remote oids, the client skipped the empty commit


def test_revisions_are_pinned_by_sha_branch_and_tag(hub: HubServer, tmp_path: Path):
    api = HfApi()
    api.create_repo("org/pinned")
    old = api.upload_folder(folder_path=make_folder(tmp_path / "v1", b"old" * 1000), repo_id="org/pinned").oid
    api.create_tag("org/pinned", tag="v1")
    api.create_branch("org/pinned", branch="stable")
    new = api.upload_folder(folder_path=make_folder(tmp_path / "v2", b"new" * 1000), repo_id="org/pinned").oid
    assert new != old

    assert Path(hf_hub_download("org/pinned", "model.safetensors")).read_bytes() == b"new" * 1000
    for revision in (old, "v1", "stable", "refs/heads/stable"):
        path = hf_hub_download("org/pinned", "model.safetensors", revision=revision)
        assert Path(path).read_bytes() == b"old" * 1000, revision
    assert api.model_info("org/pinned", revision="v1").sha == old

    commits = api.list_repo_commits("org/pinned")
    assert [c.commit_id for c in commits[:2]] == [new, old]
    repo = hub.repo("org/pinned")
    assert repo.commits[new].parents == (old,)
    refs = api.list_repo_refs("org/pinned")
    assert {b.name: b.target_commit for b in refs.branches} == {"main": new, "stable": old}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", old)]


def test_commit_to_branch_delete_and_parent_check(hub: HubServer):
    api = HfApi()
    api.create_repo("org/ops")
    api.create_branch("org/ops", branch="dev")
    dev = api.create_commit(
        "org/ops", [CommitOperationAdd("x.txt", b"dev only")], commit_message="on dev", revision="dev"
    ).oid
    assert api.list_repo_files("org/ops") == [".gitattributes"]
    assert api.list_repo_files("org/ops", revision="dev") == [".gitattributes", "x.txt"]
    with pytest.raises(HfHubHTTPError) as exc:  # the branch moved since the given parent
        api.create_commit(
            "org/ops", [CommitOperationAdd("y.txt", b"y")], commit_message="late", revision="dev",
            parent_commit=hub.repo("org/ops").branches["main"],
        )
    assert exc.value.response.status_code == 412
    api.create_commit(
        "org/ops", [CommitOperationDelete("x.txt")], commit_message="rm", revision="dev", parent_commit=dev
    )
    assert api.list_repo_files("org/ops", revision="dev") == [".gitattributes"]
    with pytest.raises(EntryNotFoundError):
        api.create_commit("org/ops", [CommitOperationDelete("x.txt")], commit_message="again", revision="dev")
    with pytest.raises(RevisionNotFoundError):
        api.create_commit("org/ops", [CommitOperationAdd("z", b"z")], commit_message="x", revision="no-branch")


def test_errors_map_to_the_client_exception_classes(hub: HubServer, tmp_path: Path):
    api = HfApi()
    api.create_repo("org/errs")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/missing", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/missing")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/errs", ".gitattributes", revision="nope")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/errs", revision="0" * 40)
    with pytest.raises(EntryNotFoundError) as exc:
        hf_hub_download("org/errs", "missing.bin")
    head = exc.value.response.headers
    assert head["X-Error-Code"] == "EntryNotFound"
    assert head["X-Repo-Commit"] == hub.repo("org/errs").branches["main"]
    # the absent file is remembered in the cache under the commit the server named
    cache = Path(os.environ["HF_HUB_CACHE"]) / "models--org--errs" / ".no_exist"
    assert (cache / head["X-Repo-Commit"] / "missing.bin").exists()
    with pytest.raises(EntryNotFoundError):  # transformers probes optional folders this way
        list(api.list_repo_tree("org/errs", path_in_repo="additional_chat_templates"))


def test_private_repos_need_a_token_and_bad_tokens_are_refused(hub: HubServer, tmp_path: Path):
    api = HfApi()
    api.create_repo("org/secret", private=True)
    api.upload_file(path_or_fileobj=b"hidden", path_in_repo="s.txt", repo_id="org/secret")
    assert api.model_info("org/secret").private is True
    assert Path(hf_hub_download("org/secret", "s.txt")).read_bytes() == b"hidden"
    with pytest.raises(RepositoryNotFoundError) as exc:
        hf_hub_download("org/secret", "s.txt", token=False, cache_dir=tmp_path / "anonymous")
    assert exc.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info("org/secret")
    with pytest.raises(HfHubHTTPError) as exc:
        HfApi(token="hf_wrong").model_info("org/secret")
    assert exc.value.response.status_code == 401
    assert not isinstance(exc.value, RepositoryNotFoundError)
    with pytest.raises(HfHubHTTPError) as exc:
        HfApi(token=READ_TOKEN).upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="org/secret")
    assert exc.value.response.status_code == 403
    assert all(r.user in (None, "tester", "reader") for r in hub.requests)


def test_anonymous_writes_are_refused_and_public_reads_stay_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with HubServer(tokens={TOKEN: "tester"}) as server:
        point_client_at(monkeypatch, server.url, tmp_path / "home", token=None)
        anonymous = HfApi(token=False)
        with pytest.raises(HfHubHTTPError) as exc:
            anonymous.create_repo("tester/x")
        assert exc.value.response.status_code == 401
        HfApi(token=TOKEN).create_repo("tester/x")
        with pytest.raises(HfHubHTTPError) as exc:
            anonymous.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="tester/x")
        assert exc.value.response.status_code == 401
        with pytest.raises(HfHubHTTPError) as exc:
            anonymous.delete_repo("tester/x")
        assert exc.value.response.status_code == 401
        with pytest.raises(HfHubHTTPError) as exc:
            anonymous.create_branch("tester/x", branch="b")
        assert exc.value.response.status_code == 401
        assert anonymous.list_repo_files("tester/x") == [".gitattributes"]  # public reads stay open
        assert HfApi(token=TOKEN).whoami()["name"] == "tester"
        assert all(r.user is None for r in server.requests if r.status == 401)


ALICE, BOB, CAROL = "hf_aliceToken000000000000000000000000", "hf_bobToken00000000000000000000000000", "hf_carol0"


def test_a_token_reads_writes_and_deletes_only_its_own_users_private_repos(tmp_path, monkeypatch):
    with HubServer(tokens={ALICE: "alice", BOB: "bob"}) as server:
        point_client_at(monkeypatch, server.url, tmp_path / "home", token=None)
        alice, bob = HfApi(token=ALICE), HfApi(token=BOB)
        alice.create_repo("alice/diary", private=True)
        alice.upload_file(path_or_fileobj=b"secret", path_in_repo="d.txt", repo_id="alice/diary")
        alice.create_repo("alice/open")
        for attempt in (
            lambda: bob.model_info("alice/diary"),
            lambda: bob.list_repo_files("alice/diary"),
            lambda: hf_hub_download("alice/diary", "d.txt", token=BOB, cache_dir=tmp_path / "bob"),
            lambda: bob.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="alice/diary"),
            lambda: bob.delete_repo("alice/diary"),
            lambda: bob.update_repo_settings("alice/diary", private=False),
        ):
            with pytest.raises(RepositoryNotFoundError):  # to bob, alice's private repo does not exist
                attempt()
        assert bob.list_repo_files("alice/open") == [".gitattributes"]  # public: readable by anyone
        for attempt in (
            lambda: bob.upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id="alice/open"),
            lambda: bob.delete_repo("alice/open"),
            lambda: bob.create_tag("alice/open", tag="v1"),
            lambda: bob.create_repo("alice/mine"),
        ):
            with pytest.raises(HfHubHTTPError) as exc:
                attempt()
            assert exc.value.response.status_code == 403
        assert server.repo("alice/diary").read(server.repo("alice/diary").resolve("main").files["d.txt"]) == b"secret"
        assert alice.model_info("alice/diary").private is True
        alice.delete_repo("alice/open")
        with pytest.raises(RepositoryNotFoundError):
            alice.model_info("alice/open")


def test_organisations_share_repos_among_members_and_unowned_namespaces_are_claimed(tmp_path, monkeypatch):
    with HubServer(tokens={ALICE: "alice", BOB: "bob", CAROL: "carol"}, orgs={"team": ["alice", "bob"]}) as server:
        point_client_at(monkeypatch, server.url, tmp_path / "home", token=None)
        HfApi(token=ALICE).create_repo("team/shared", private=True)
        HfApi(token=BOB).upload_file(path_or_fileobj=b"from bob", path_in_repo="b.txt", repo_id="team/shared")
        assert HfApi(token=ALICE).list_repo_files("team/shared") == [".gitattributes", "b.txt"]
        assert [o["name"] for o in HfApi(token=BOB).whoami()["orgs"]] == ["team"]
        with pytest.raises(RepositoryNotFoundError):
            HfApi(token=CAROL).list_repo_files("team/shared")
        with pytest.raises(HfHubHTTPError) as exc:
            HfApi(token=CAROL).create_repo("team/intruder")
        assert exc.value.response.status_code == 403
        HfApi(token=CAROL).create_repo("lab/first")  # nobody owned 'lab': carol claims it
        with pytest.raises(HfHubHTTPError) as exc:
            HfApi(token=ALICE).create_repo("lab/second")
        assert exc.value.response.status_code == 403


def test_tree_pagination_follows_link_headers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with HubServer(tokens={TOKEN: "tester"}, page_size=2) as server:
        point_client_at(monkeypatch, server.url, tmp_path / "home", TOKEN)
        api = HfApi()
        api.create_repo("org/many")
        ops = [CommitOperationAdd(f"d/f{i}.txt", f"{i}".encode()) for i in range(5)]
        api.create_commit("org/many", ops, commit_message="five")
        listed = [f.path for f in api.list_repo_tree("org/many", recursive=True)]
        assert listed == ["d", ".gitattributes", *[f"d/f{i}.txt" for i in range(5)]]
        tree_calls = [r for r in server.requests if "/tree/" in r.path]
        assert len(tree_calls) == 4  # 7 entries, 2 per page
        snapshot = Path(snapshot_download("org/many"))
        assert sorted(p.name for p in (snapshot / "d").iterdir()) == [f"f{i}.txt" for i in range(5)]


def test_range_requests_and_headers(hub: HubServer):
    api = HfApi()
    api.create_repo("org/range")
    data = bytes(range(256)) * 40
    api.upload_file(path_or_fileobj=data, path_in_repo="blob.bin", repo_id="org/range")
    api.upload_file(path_or_fileobj=b"plain text\n", path_in_repo="t.txt", repo_id="org/range")
    url = f"{hub.url}/org/range/resolve/main/blob.bin"
    status, head, body = http("HEAD", url)
    assert status == 200 and body == b""
    assert head["X-Linked-Etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert head["X-Linked-Size"] == head["Content-Length"] == str(len(data))
    assert head["X-Repo-Commit"] == hub.repo("org/range").branches["main"]
    status, part, body = http("GET", url, {"Range": "bytes=100-"})
    assert status == 206 and body == data[100:]
    assert part["Content-Range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    assert http("GET", url, {"Range": "bytes=10-19"})[2] == data[10:20]
    assert http("GET", url, {"Range": f"bytes={len(data)}-"})[0] == 416
    status, text, _ = http("HEAD", f"{hub.url}/org/range/resolve/main/t.txt")
    assert "X-Linked-Etag" not in text
    blob = subprocess.run(["git", "hash-object", "--stdin"], input=b"plain text\n", capture_output=True)
    if blob.returncode == 0:
        assert text["ETag"] == f'"{blob.stdout.decode().strip()}"'


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command to compare object ids")
def test_object_ids_are_real_git_ids(hub: HubServer, tmp_path: Path):
    api = HfApi()
    api.create_repo("org/git")
    files = {"a.txt": b"alpha\n", "dir/b.txt": b"beta\n", "dir/sub/c.json": b"{}\n"}
    api.create_commit("org/git", [CommitOperationAdd(p, c) for p, c in files.items()], commit_message="files")
    commit = hub.repo("org/git").resolve("main")
    work = tmp_path / "git"
    work.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    (work / ".gitattributes").write_bytes(hub.repo("org/git").read(commit.files[".gitattributes"]))
    for path, content in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(content)
    subprocess.run(["git", "add", "-A"], cwd=work, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=work, check=True, capture_output=True, text=True).stdout
    assert commit.tree_oid == tree.strip()
    sub = subprocess.run(["git", "rev-parse", f"{tree.strip()}:dir"], cwd=work, capture_output=True, text=True)
    assert commit.folders["dir"] == sub.stdout.strip()


def test_readme_metadata_is_validated(hub: HubServer):
    api = HfApi()
    api.create_repo("org/card")
    api.upload_file(path_or_fileobj=b"---\nlibrary_name: mmzoo\ntags: [x]\n---\n# ok\n", path_in_repo="README.md",
                    repo_id="org/card")
    info = api.model_info("org/card")
    assert info.library_name == "mmzoo" and "x" in info.tags
    for bad in (b"---\ntags: [unclosed\n---\n", b"---\nlibrary_name: [1, 2]\n---\n"):
        with pytest.raises(ValueError, match="Invalid metadata"):
            api.upload_file(path_or_fileobj=bad, path_in_repo="README.md", repo_id="org/card")


def test_dataset_repos_live_beside_model_repos(hub: HubServer):
    api = HfApi()
    assert api.create_repo("org/same-name", repo_type="dataset") == f"{hub.url}/datasets/org/same-name"
    api.create_repo("org/same-name")
    api.upload_file(path_or_fileobj=b"a,b\n1,2\n", path_in_repo="data/train.csv", repo_id="org/same-name",
                    repo_type="dataset")
    api.upload_file(path_or_fileobj=b"\x00" * 64, path_in_repo="rows.parquet", repo_id="org/same-name",
                    repo_type="dataset")
    assert api.list_repo_files("org/same-name") == [".gitattributes"]
    assert api.list_repo_files("org/same-name", repo_type="dataset") == [".gitattributes", "data/train.csv",
                                                                         "rows.parquet"]
    info = api.dataset_info("org/same-name", files_metadata=True)
    assert {s.rfilename: bool(s.lfs) for s in info.siblings}["rows.parquet"] is True
    path = hf_hub_download("org/same-name", "data/train.csv", repo_type="dataset")
    assert Path(path).read_bytes() == b"a,b\n1,2\n"
    snapshot = Path(snapshot_download("org/same-name", repo_type="dataset"))
    assert (snapshot / "rows.parquet").read_bytes() == b"\x00" * 64
