"""The endpoints of the local Hub server (see :mod:`mmzoo.testing.hub_server`), as handler mixins.

``ReadEndpoints`` answers account, repo-creation and read requests; ``WriteEndpoints`` answers preupload,
commits, branches, tags and the LFS batch/upload/verify protocol. Both run inside the request handler,
which provides ``_json``/``_send``, ``_repo`` (lookup with auth), ``_body``/``_json_body`` (the request
body, which endpoints read only after checking the caller's rights), ``_caller``, ``_query`` and ``server``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, quote, urlsplit

import yaml

from mmzoo.testing.hub_git import HubRequestError, Repo, wants_lfs

LFS_JSON = "application/vnd.git-lfs+json"


def _front_matter(text: str) -> tuple[dict | None, str | None]:
    """The YAML metadata block of a README (``None`` if absent) and a parse error message if any."""
    if not text.startswith("---"):
        return None, None
    end = text.find("\n---", 3)
    if end < 0:
        return None, "the metadata block opened by '---' is never closed"
    try:
        data = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as e:
        return None, f"invalid YAML in the metadata block: {e}"
    if not isinstance(data, dict):
        return None, "the metadata block must be a mapping"
    return data, None


def _metadata_errors(meta: dict) -> list[str]:
    errors = []
    for key in ("library_name", "license", "pipeline_tag"):
        if key in meta and not isinstance(meta[key], str):
            errors.append(f'"{key}" must be a string')
    for key in ("tags", "datasets", "metrics", "language"):
        value = meta.get(key)
        if value is not None and not (
            isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            errors.append(f'"{key}" must be a string or a list of strings')
    base = meta.get("base_model")
    if base is not None and not isinstance(base, (str, list)):
        errors.append('"base_model" must be a string or a list of strings')
    for i, result in enumerate(meta.get("model-index") or []):
        if not isinstance(result, dict) or "name" not in result or not isinstance(result.get("results"), list):
            errors.append(f'"model-index[{i}]" must have "name" and a list of "results"')
    return errors


class ReadEndpoints:
    """Account, repo creation and read endpoints."""

    # ---- account and repos ----------------------------------------------------------------------
    def _whoami(self) -> None:
        user = self._caller.user
        if user is None:
            raise HubRequestError(401, "Invalid username or password.")
        role = "write" if self._caller.can_write else "read"
        self._json(
            {
                "type": "user",
                "id": user,
                "name": user,
                "fullname": user,
                "orgs": [{"type": "org", "name": org} for org in self.server.policy.user_orgs(user)],
                "auth": {"type": "access_token", "accessToken": {"displayName": "local", "role": role}},
            }
        )

    def _writer_first(self) -> None:
        # Checked before a body is read: an anonymous or read-only caller sends nothing the server reads.
        if self._caller.user is None:
            raise HubRequestError(401, "You must be authenticated with a write token")
        if not self._caller.can_write:
            raise HubRequestError(403, "Your token is read-only")

    def _create_repo(self) -> None:
        self._writer_first()
        caller, payload = self._caller, self._json_body()
        namespace = payload.get("organization") or caller.user
        name = payload.get("name")
        if not isinstance(namespace, str) or not isinstance(name, str) or not name:
            raise HubRequestError(400, "A repo needs a name and a namespace (organization or token user)")
        repo_type = payload.get("type") or "model"
        if "/" in namespace or "/" in name:
            raise HubRequestError(400, f"Invalid repo name '{namespace}/{name}'")
        self.server.policy.check_create(caller, namespace)
        repo_id = f"{namespace}/{name}"
        url = self.server.repo_url(repo_type, repo_id)
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        state = self.server.state
        with state.lock:
            if state.find(repo_type, repo_id) is not None:
                return self._json({"error": "You already created this repo", "url": url}, status=409)
            state.create_repo(repo_type, repo_id, private=private, author=caller.user)
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        self._writer_first()
        payload = self._json_body()
        repo_type = payload.get("type") or "model"
        repo_id = "/".join(p for p in (payload.get("organization") or self._caller.user, payload["name"]) if p)
        with self.server.state.lock:
            self._repo(repo_type, repo_id, write=True)
            del self.server.state.repos[(repo_type, repo_id)]
        self._json({})

    def _validate_yaml(self, payload: dict) -> None:
        meta, error = _front_matter(payload.get("content", ""))
        errors = [error] if error else _metadata_errors(meta or {})
        warnings = [] if meta or errors else [{"message": "Empty or missing yaml metadata in repo card"}]
        body = {"errors": [{"message": m} for m in errors], "warnings": warnings}
        self._json(body, status=400 if errors else 200)

    # ---- reads ----------------------------------------------------------------------------------
    def _info(self, repo: Repo, revision: str) -> None:
        commit = repo.resolve(revision)
        with_blobs = self._query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for path in sorted(commit.files):
            entry = commit.files[path]
            sibling = {"rfilename": path}
            if with_blobs:
                sibling.update(size=entry.size, blobId=entry.blob_oid)
                if entry.lfs_sha256:
                    sibling["lfs"] = {"size": entry.size, "sha256": entry.lfs_sha256, "pointerSize": entry.pointer_size}
            siblings.append(sibling)
        card, config = None, None
        if "README.md" in commit.files:
            card, _ = _front_matter(repo.read(commit.files["README.md"]).decode("utf-8", "replace"))
        if "config.json" in commit.files:
            try:
                config = json.loads(repo.read(commit.files["config.json"]))
            except ValueError:
                config = None
        card = card or {}
        tags = [t for t in ([card.get("library_name")] + list(card.get("tags") or [])) if isinstance(t, str)]
        if isinstance(card.get("license"), str):
            tags.append(f"license:{card['license']}")
        self._json(
            {
                "_id": repo.repo_id,
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": repo.repo_id.split("/")[0],
                "sha": commit.oid,
                "lastModified": commit.date_iso,
                "createdAt": repo.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "library_name": card.get("library_name"),
                "tags": tags,
                "cardData": card or None,
                "config": config if isinstance(config, dict) else None,
                "siblings": siblings,
            }
        )

    def _tree_item(self, repo: Repo, commit, path: str, expand: bool) -> dict:
        entry = commit.files.get(path)
        item = entry.as_tree_item() if entry else {"type": "directory", "oid": commit.folders[path], "path": path}
        if expand:
            last = repo.last_commit_touching(commit, path)
            item["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date_iso}
        return item

    def _tree(self, repo: Repo, revision: str, path: str) -> None:
        commit = repo.resolve(revision)
        recursive = self._query.get("recursive", ["false"])[0].lower() == "true"
        expand = self._query.get("expand", ["false"])[0].lower() == "true"
        if path and path in commit.files:
            return self._json([self._tree_item(repo, commit, path, expand)])
        if path and path not in commit.folders:
            raise HubRequestError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        prefix = f"{path}/" if path else ""
        names = [p for p in [*commit.folders, *commit.files] if p.startswith(prefix)]
        if not recursive:
            names = [p for p in names if "/" not in p[len(prefix) :]]
        names.sort(key=lambda p: (p not in commit.folders, p))
        limit = min(int(self._query.get("limit", [self.server.page_size])[0]), self.server.page_size)
        start = int(self._query.get("cursor", ["0"])[0] or 0)
        page = [self._tree_item(repo, commit, p, expand) for p in names[start : start + limit]]
        headers = {}
        if start + limit < len(names):
            query = {k: v[0] for k, v in self._query.items() if k != "cursor"}
            query["cursor"] = str(start + limit)
            link = f"{self.server.url}{urlsplit(self.path).path}?" + "&".join(
                f"{k}={quote(str(v), safe='')}" for k, v in query.items()
            )
            headers["Link"] = f'<{link}>; rel="next"'
        self._json(page, headers=headers)

    def _paths_info(self, repo: Repo, revision: str) -> None:
        commit, body = repo.resolve(revision), self._body()
        ctype = self.headers.get("Content-Type", "")
        form = json.loads(body) if "json" in ctype else {k: v for k, v in parse_qs(body.decode()).items()}
        paths = form.get("paths", [])
        expand = (
            str(
                (form.get("expand") or ["false"])[0] if isinstance(form.get("expand"), list) else form.get("expand")
            ).lower()
            == "true"
        )
        known = [p for p in ([paths] if isinstance(paths, str) else paths) if p in commit.files or p in commit.folders]
        self._json([self._tree_item(repo, commit, p, expand) for p in known])

    def _refs(self, repo: Repo) -> None:
        def refs(kind: str, table: dict) -> list[dict]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": o} for n, o in sorted(table.items())]

        self._json(
            {
                "branches": refs("heads", repo.branches),
                "tags": refs("tags", repo.tags),
                "converts": [],
                "pullRequests": [],
            }
        )

    def _commits(self, repo: Repo, revision: str) -> None:
        self._json(
            [
                {
                    "id": c.oid,
                    "title": c.title,
                    "message": c.message,
                    "date": c.date_iso,
                    "authors": [{"user": c.author, "avatar": ""}],
                    "parents": list(c.parents),
                }
                for c in repo.history(revision)
            ]
        )

    def _resolve(self, method: str, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        with self.server.state.lock:
            repo = self._repo(repo_type, repo_id)
            commit = repo.resolve(revision)
            entry = commit.files.get(path)
            if entry is None:
                raise HubRequestError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
            data = self.server.content_override.get((repo_type, repo_id, entry.etag)) or repo.read(entry)
        headers = {
            "Content-Type": "application/octet-stream",
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{entry.blob_oid}"',
            "Accept-Ranges": "bytes",
        }
        if entry.lfs_sha256:
            headers.update({"X-Linked-Etag": f'"{entry.lfs_sha256}"', "X-Linked-Size": str(entry.size)})
        status, body = 200, data
        range_header = self.headers.get("Range")
        if range_header and method == "GET":
            first, _, last = range_header.removeprefix("bytes=").partition("-")
            start = int(first)
            end = min(int(last), len(data) - 1) if last else len(data) - 1
            if start >= len(data) or start > end:
                headers = {"Content-Range": f"bytes */{len(data)}", "X-Repo-Commit": commit.oid}
                return self._send(416, b"", headers)
            status, body = 206, data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        if method == "GET":
            body = self._maybe_truncated(repo_type, repo_id, entry.etag, body)
        headers["Content-Length"] = str(len(body))
        self._send(status, body, headers, head=method == "HEAD")


    def _maybe_truncated(self, repo_type: str, repo_id: str, etag: str, body: bytes) -> bytes:
        """``body`` cut short when a test asked for it (:meth:`HubServer.serve_truncated`)."""
        with self.server.state.lock:
            fault = self.server.truncations.get((repo_type, repo_id, etag))
            if fault is None or fault[1] <= 0:
                return body
            fault[1] -= 1
            return body[: fault[0]]


class WriteEndpoints:
    """Preupload, commit, branch, tag and LFS endpoints."""

    # ---- writes ---------------------------------------------------------------------------------
    def _branch_for_write(self, repo: Repo, revision: str) -> str:
        branch = revision.removeprefix("refs/heads/")
        if branch not in repo.branches:
            raise HubRequestError(
                404, f"Invalid rev id: {revision} (commits go to an existing branch)", "RevisionNotFound"
            )
        return branch

    def _preupload(self, repo: Repo, revision: str) -> None:
        commit = repo.commits[repo.branches[self._branch_for_write(repo, revision)]]
        payload = self._json_body()
        files = []
        for f in payload.get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            existing = commit.files.get(f["path"])
            files.append(
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if wants_lfs(f["path"], f["size"], sample) else "regular",
                    "shouldIgnore": False,
                    "oid": existing.etag if existing else None,
                }
            )
        self._json({"files": files, "commitOid": commit.oid})

    def _commit(self, repo: Repo, revision: str) -> None:
        branch = self._branch_for_write(repo, revision)
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubRequestError(400, "A commit payload starts with a 'header' line")
        header = lines[0]["value"]
        added, deleted_files, deleted_folders = [], [], []
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubRequestError(400, f"Unsupported encoding {value.get('encoding')!r}")
                added.append(repo.add_regular(value["path"], base64.b64decode(value["content"])))
            elif key == "lfsFile":
                added.append(repo.add_lfs(value["path"], value["oid"], value.get("size")))
            elif key == "deletedFile":
                deleted_files.append(value["path"])
            elif key == "deletedFolder":
                deleted_folders.append(value["path"])
            else:
                raise HubRequestError(400, f"Unknown commit operation {key!r}")
        commit = repo.commit(
            branch,
            title=header.get("summary") or "Update",
            message=header.get("description") or "",
            author=self._caller.user or "anonymous",
            added=added,
            deleted_files=deleted_files,
            deleted_folders=deleted_folders,
            parent_commit=header.get("parentCommit"),
        )
        url = f"{self.server.repo_url(repo.repo_type, repo.repo_id)}/commit/{commit.oid}"
        self._json({"success": True, "commitOid": commit.oid, "commitUrl": url, "pullRequestUrl": None})

    def _branch(self, repo: Repo, method: str, branch: str) -> None:
        if method == "DELETE":
            if branch not in repo.branches or branch == "main":
                raise HubRequestError(
                    404 if branch != "main" else 400,
                    f"Cannot delete branch {branch}",
                    "RevisionNotFound" if branch != "main" else None,
                )
            del repo.branches[branch]
            return self._json({})
        if branch in repo.branches or branch in repo.tags:
            raise HubRequestError(409, f"Reference already exists: {branch}")
        start = self._json_body().get("startingPoint") or "main"
        repo.branches[branch] = repo.resolve(start).oid
        self._json({})

    def _tag(self, repo: Repo, method: str, name: str) -> None:
        if method == "DELETE":
            if repo.tags.pop(name, None) is None:
                raise HubRequestError(404, f"Invalid rev id: {name}", "RevisionNotFound")
            return self._json({})
        tag = self._json_body()["tag"]
        if tag in repo.tags or tag in repo.branches:
            raise HubRequestError(409, f"Reference already exists: {tag}")
        repo.tags[tag] = repo.resolve(name).oid
        self._json({})

    def _lfs_api(self, repo_type: str, repo_id: str, rest: list[str]) -> None:
        self._repo(repo_type, repo_id, write=True)  # rights first, then the body, read outside the lock
        payload = self._json_body()
        with self.server.state.lock:
            repo = self._repo(repo_type, repo_id, write=True)
            if rest == ["verify"]:
                data = repo.lfs.get(payload.get("oid"))
                if data is None or len(data) != payload.get("size"):
                    raise HubRequestError(404, f"LFS object {payload.get('oid')} was not uploaded")
                return self._json({"message": "ok"}, headers={"Content-Type": LFS_JSON})
            if rest != ["batch"] or payload.get("operation") != "upload":
                raise HubRequestError(400, "Only LFS batch uploads are supported")
            objects = []
            for obj in payload.get("objects", []):
                oid, size = obj["oid"], int(obj["size"])
                if not 0 <= size <= self.server.max_file_bytes:
                    raise HubRequestError(413, f"LFS object of {size} bytes is over the limit of "
                                               f"{self.server.max_file_bytes} bytes")
                if oid in repo.lfs:
                    objects.append({"oid": oid, "size": size})
                    continue
                upload_id = secrets.token_urlsafe(16)
                self.server.pending_uploads[upload_id] = (repo_type, repo_id, oid, size)
                prefix = "" if repo_type == "model" else f"{repo_type}s/"
                verify = f"{self.server.url}/{prefix}{repo_id}.git/info/lfs/objects/verify"
                objects.append(
                    {
                        "oid": oid,
                        "size": size,
                        "authenticated": True,
                        "actions": {
                            "upload": {"href": f"{self.server.url}/_lfs/upload/{upload_id}", "expires_in": 3600},
                            "verify": {"href": verify},
                        },
                    }
                )
        self._json({"transfer": "basic", "objects": objects}, headers={"Content-Type": LFS_JSON})

    def _lfs_put(self, upload_id: str) -> None:
        # The upload link is the capability: it was handed to a caller with write access to the repo.
        with self.server.state.lock:
            target = self.server.pending_uploads.pop(upload_id, None)
        if target is None:
            raise HubRequestError(403, "Unknown or used LFS upload link")
        repo_type, repo_id, oid, size = target
        body = self._body(limit=size)  # read outside the lock: other requests go on meanwhile
        with self.server.state.lock:
            if hashlib.sha256(body).hexdigest() != oid or len(body) != size:
                raise HubRequestError(400, f"Uploaded content does not match LFS object {oid} ({size} bytes)")
            repo = self.server.state.find(repo_type, repo_id)
            if repo is not None:
                repo.lfs[oid] = body
        self._send(200, b"", {"ETag": f'"{oid}"'})
