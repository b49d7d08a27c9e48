"""Who may do what on the local Hub server (:mod:`mmzoo.testing.hub_server`): tokens, users, orgs.

A token names a user, with write access or read-only. A repo ``ns/name`` belongs to namespace ``ns``:
the user of that name, or an organisation whose members are listed (``orgs={"team": ["alice"]}``).
A namespace that is neither is claimed by the first user who creates a repo in it, and is an
organisation of that one user from then on.

- Anyone, anonymous included, reads public repos.
- Only members of its namespace read a private repo; to everyone else it does not exist (404, or
  401 without a token, as on the Hub).
- Only members with a write token create, change or delete repos of a namespace; an anonymous
  write is refused with 401, another user's with 403.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mmzoo.testing.hub_git import HubRequestError, Repo

TOKENS_ENV = "MMZOO_HUB_TOKENS"
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True)
class Caller:
    """The user a request acts for (``None``: anonymous) and whether its token may write."""

    user: str | None
    can_write: bool


def parse_tokens(text: str, source: str) -> tuple[dict[str, str], set[str]]:
    """Parse ``TOKEN=USER`` or ``TOKEN=USER:read`` entries, one per line or comma-separated.

    Blank entries and lines starting with ``#`` are skipped. Returns ``({token: user}, read-only tokens)``;
    ``ValueError`` names ``source`` and the entry's number (never the token) when one is malformed.
    """
    tokens: dict[str, str] = {}
    read_only: set[str] = set()
    entries = [e.strip() for line in text.splitlines() if not line.lstrip().startswith("#") for e in line.split(",")]
    for number, entry in enumerate((e for e in entries if e), start=1):
        token, _, user = entry.partition("=")
        user, _, role = user.partition(":")
        if not token.strip() or not _NAME.match(user.strip()) or role.strip() not in ("", "read", "write"):
            raise ValueError(f"{source}: entry {number} is not TOKEN=USER or TOKEN=USER:read")
        tokens[token.strip()] = user.strip()
        if role.strip() == "read":
            read_only.add(token.strip())
    return tokens, read_only


def tokens_from(file: str | os.PathLike | None = None, env: Mapping[str, str] | None = None):
    """Tokens from ``file`` (if given) and the ``MMZOO_HUB_TOKENS`` environment variable."""
    tokens: dict[str, str] = {}
    read_only: set[str] = set()
    env = os.environ if env is None else env
    sources = [(env.get(TOKENS_ENV, ""), TOKENS_ENV)]
    if file is not None:
        sources.append((Path(file).read_text(encoding="utf-8"), str(file)))
    for text, source in sources:
        more, more_read_only = parse_tokens(text, source)
        tokens.update(more)
        read_only |= more_read_only
    return tokens, read_only


class AccessPolicy:
    """Tokens, organisations and the read/write rules of the module docstring."""

    def __init__(
        self,
        tokens: Mapping[str, str],
        read_only_tokens: Iterable[str] = (),
        orgs: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.tokens = dict(tokens)
        self.read_only_tokens = set(read_only_tokens)
        self.orgs = {org: set(members) for org, members in (orgs or {}).items()}
        self._lock = threading.Lock()

    def add_token(self, token: str, user: str, *, write: bool = True) -> None:
        with self._lock:
            self.tokens[token] = user
            (self.read_only_tokens.discard if write else self.read_only_tokens.add)(token)

    def caller(self, authorization: str) -> Caller:
        """The caller an ``Authorization`` header names; 401 for a token the server does not know."""
        if not authorization:
            return Caller(None, False)
        token = authorization.removeprefix("Bearer ").strip()
        with self._lock:
            user = self.tokens.get(token)
            if user is None:
                raise HubRequestError(401, "Invalid credentials in Authorization header")
            return Caller(user, token not in self.read_only_tokens)

    def member(self, user: str | None, namespace: str) -> bool:
        """Whether ``user`` is ``namespace`` or one of its organisation's members."""
        with self._lock:
            return user is not None and (user == namespace or user in self.orgs.get(namespace, ()))

    def user_orgs(self, user: str) -> list[str]:
        with self._lock:
            return sorted(org for org, members in self.orgs.items() if user in members)

    def check_create(self, caller: Caller, namespace: str) -> None:
        """Allow ``caller`` to create a repo in ``namespace`` (claiming it if nobody has), or raise."""
        if caller.user is None:
            raise HubRequestError(401, "You must be authenticated with a write token to create a repo")
        if not caller.can_write:
            raise HubRequestError(403, "Your token is read-only: it cannot create repos")
        with self._lock:
            users = set(self.tokens.values())
            if namespace not in users and namespace not in self.orgs and _NAME.match(namespace):
                self.orgs[namespace] = {caller.user}  # first come: an organisation of one
        if not self.member(caller.user, namespace):
            raise HubRequestError(403, f"You ({caller.user}) cannot create repos in the namespace '{namespace}'")

    def check(self, caller: Caller, repo: Repo | None, *, write: bool) -> Repo:
        """Return ``repo`` if ``caller`` may read it (or write it); raise the Hub's answer otherwise."""
        if write and caller.user is None:
            raise HubRequestError(401, "You must be authenticated with a token to write to the Hub")
        namespace = repo.repo_id.split("/")[0] if repo is not None and "/" in repo.repo_id else None
        is_member = namespace is not None and self.member(caller.user, namespace)
        if repo is None or (repo.private and not is_member):
            raise HubRequestError(401 if caller.user is None else 404, "Repository not found", "RepoNotFound")
        if write and not caller.can_write:
            raise HubRequestError(403, f"Your token has no write access to {repo.repo_id}")
        if write and not is_member:
            raise HubRequestError(403, f"You ({caller.user}) are not allowed to write to {repo.repo_id}")
        return repo
