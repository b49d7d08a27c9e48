"""Git-like state behind the local Hub server: repos, branches, tags, commits, blobs and LFS objects.

Object ids are computed the way git computes them (blob, tree and commit objects hashed with sha1), so
commit shas, file oids and folder oids look and behave like the real Hub's. LFS files are stored in git
as pointer files; their content lives in a per-repo LFS store keyed by sha256.
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

# Patterns the Hub's default .gitattributes tracks with LFS (plus binary content and large files).
LFS_PATTERNS = (
    "*.7z",
    "*.arrow",
    "*.bin",
    "*.bz2",
    "*.ckpt",
    "*.ftz",
    "*.gz",
    "*.h5",
    "*.joblib",
    "*.lfs.*",
    "*.mlmodel",
    "*.model",
    "*.msgpack",
    "*.npy",
    "*.npz",
    "*.onnx",
    "*.ot",
    "*.parquet",
    "*.pb",
    "*.pickle",
    "*.pkl",
    "*.pt",
    "*.pth",
    "*.rar",
    "*.safetensors",
    "*.tar",
    "*.tar.*",
    "*.tflite",
    "*.tgz",
    "*.wasm",
    "*.xz",
    "*.zip",
    "*.zst",
    "*tfevents*",
)
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS).encode()
REPO_TYPES = ("model", "dataset", "space")


class HubRequestError(Exception):
    """A request the Hub answers with an error status, an optional ``X-Error-Code`` and extra headers."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


def git_object_oid(kind: str, data: bytes) -> str:
    """The sha1 git gives an object of ``kind`` ('blob', 'tree', 'commit') holding ``data``."""
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The pointer file git stores in place of an LFS object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def wants_lfs(path: str, size: int, sample: bytes) -> bool:
    """Whether the Hub stores a file as LFS: tracked pattern, binary sample, or too large for git."""
    name = path.rsplit("/", 1)[-1]
    if any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in LFS_PATTERNS):
        return True
    return size >= LFS_SIZE_THRESHOLD or b"\0" in sample


def check_path(path: str) -> str:
    """Refuse paths git or the Hub would not accept (absolute, empty parts, '..', '.git')."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] == ".git":
        raise HubRequestError(400, f"Invalid path in repo: '{path}'")
    return path


@dataclass(frozen=True)
class FileEntry:
    """One file of a commit's tree. ``blob_oid`` is the git blob (the pointer file for LFS files)."""

    path: str
    size: int
    blob_oid: str
    lfs_sha256: str | None = None
    pointer_size: int | None = None

    @property
    def etag(self) -> str:
        return self.lfs_sha256 or self.blob_oid

    def as_tree_item(self) -> dict:
        item = {"type": "file", "oid": self.blob_oid, "size": self.size, "path": self.path}
        if self.lfs_sha256:
            item["lfs"] = {"oid": self.lfs_sha256, "size": self.size, "pointerSize": self.pointer_size}
        return item


@dataclass
class Commit:
    """An immutable commit: its tree (path -> entry), its folders (path -> tree oid) and its parents."""

    oid: str
    parents: tuple[str, ...]
    files: dict[str, FileEntry]
    folders: dict[str, str]
    tree_oid: str
    title: str
    message: str
    author: str
    date: datetime

    @property
    def date_iso(self) -> str:
        return self.date.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _tree_oids(files: dict[str, FileEntry]) -> tuple[str, dict[str, str]]:
    """Hash the nested git trees of ``files``; return the root tree oid and every folder's oid."""
    nested: dict = {}
    for entry in files.values():
        node = nested
        *dirs, name = entry.path.split("/")
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = entry
    folders: dict[str, str] = {}

    def hash_tree(node: dict, prefix: str) -> str:
        # git orders tree entries by name, with folders compared as if they ended in '/'
        rows = []
        for name, child in node.items():
            if isinstance(child, dict):
                oid = hash_tree(child, f"{prefix}{name}/")
                folders[f"{prefix}{name}"] = oid
                rows.append((name + "/", b"40000 " + name.encode(), oid))
            else:
                rows.append((name, b"100644 " + name.encode(), child.blob_oid))
        data = b"".join(head + b"\0" + bytes.fromhex(oid) for _, head, oid in sorted(rows))
        return git_object_oid("tree", data)

    return hash_tree(nested, ""), folders


@dataclass
class Repo:
    """A repository: refs, commits and the content of its blobs and LFS objects."""

    repo_type: str
    repo_id: str
    private: bool
    created_at: datetime
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        """The commit a branch, tag, ``refs/heads/x``/``refs/tags/x`` or full commit sha names."""
        rev = revision.removeprefix("refs/heads/").removeprefix("refs/tags/")
        oid = self.branches.get(rev) or self.tags.get(rev)
        if oid is None and rev in self.commits:
            oid = rev
        if oid is None:
            raise HubRequestError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self.commits[oid]

    def read(self, entry: FileEntry) -> bytes:
        return self.lfs[entry.lfs_sha256] if entry.lfs_sha256 else self.blobs[entry.blob_oid]

    def history(self, revision: str) -> list[Commit]:
        """Commits reachable from ``revision`` by first parents, newest first."""
        out, commit = [], self.resolve(revision)
        while True:
            out.append(commit)
            if not commit.parents:
                return out
            commit = self.commits[commit.parents[0]]

    def last_commit_touching(self, commit: Commit, path: str) -> Commit:
        """The newest first-parent ancestor of ``commit`` that changed ``path`` (a file or folder)."""

        def oid_at(c: Commit) -> str | None:
            entry = c.files.get(path)
            return entry.blob_oid if entry else c.folders.get(path)

        current = oid_at(commit)
        while commit.parents:
            parent = self.commits[commit.parents[0]]
            if oid_at(parent) != current:
                return commit
            commit = parent
        return commit

    def add_regular(self, path: str, content: bytes) -> FileEntry:
        oid = git_object_oid("blob", content)
        self.blobs[oid] = content
        return FileEntry(check_path(path), len(content), oid)

    def add_lfs(self, path: str, sha256: str, size: int | None) -> FileEntry:
        data = self.lfs.get(sha256)
        if data is None:
            raise HubRequestError(422, f"LFS object {sha256} for '{path}' was not uploaded before the commit")
        if size is not None and size != len(data):
            raise HubRequestError(422, f"LFS object {sha256} for '{path}' has size {len(data)}, not {size}")
        pointer = lfs_pointer(sha256, len(data))
        oid = git_object_oid("blob", pointer)
        self.blobs[oid] = pointer
        return FileEntry(check_path(path), len(data), oid, sha256, len(pointer))

    def commit(
        self,
        branch: str,
        *,
        title: str,
        message: str = "",
        author: str = "anonymous",
        added: list[FileEntry] = (),
        deleted_files: list[str] = (),
        deleted_folders: list[str] = (),
        parent_commit: str | None = None,
    ) -> Commit:
        """Record a commit on ``branch`` (created if the repo has no commit yet) and move the branch."""
        head_oid = self.branches.get(branch)
        if head_oid is None and self.branches:
            raise HubRequestError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        if parent_commit is not None and parent_commit != head_oid:
            raise HubRequestError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(self.commits[head_oid].files) if head_oid else {}
        for path in deleted_files:
            if files.pop(path, None) is None:
                raise HubRequestError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
        for folder in deleted_folders:
            prefix = folder.rstrip("/") + "/"
            doomed = [p for p in files if p.startswith(prefix)]
            if not doomed:
                raise HubRequestError(404, f"A folder with this name doesn't exist: {folder}", "EntryNotFound")
            for p in doomed:
                del files[p]
        for entry in added:
            clash = next((p for p in files if p.startswith(entry.path + "/")), None)
            if clash is not None:
                raise HubRequestError(400, f"Cannot add file '{entry.path}': a folder of that name exists")
            files[entry.path] = entry
        tree_oid, folders = _tree_oids(files)
        date = datetime.now(timezone.utc)
        parents = (head_oid,) if head_oid else ()
        full_message = title + (f"\n\n{message}" if message else "")
        stamp = f"{author} <{author}@users.noreply.local> {int(date.timestamp())} +0000"
        body = f"tree {tree_oid}\n" + "".join(f"parent {p}\n" for p in parents)
        body += f"author {stamp}\ncommitter {stamp}\n\n{full_message}\n"
        oid = git_object_oid("commit", body.encode())
        commit = Commit(oid, parents, files, folders, tree_oid, title, full_message, author, date)
        self.commits[oid] = commit
        self.branches[branch] = oid
        return commit


class HubState:
    """All repos of one server, guarded by one lock (requests arrive on many threads)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}

    def create_repo(self, repo_type: str, repo_id: str, *, private: bool, author: str) -> Repo:
        """Create a repo with the Hub's initial commit (a ``.gitattributes``) on ``main``."""
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubRequestError(409, f"You already created this {repo_type} repo: {repo_id}")
            repo = Repo(repo_type, repo_id, private, datetime.now(timezone.utc))
            repo.commit(
                "main", title="initial commit", author=author, added=[repo.add_regular(".gitattributes", GITATTRIBUTES)]
            )
            self.repos[(repo_type, repo_id)] = repo
            return repo

    def find(self, repo_type: str, repo_id: str) -> Repo | None:
        with self.lock:
            return self.repos.get((repo_type, repo_id))
