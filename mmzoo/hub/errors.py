"""``huggingface_hub`` failures as one :class:`~mmzoo.errors.HubError` that says what failed and what to do.

Messages never show a token; they name the repo, revision, file and endpoint concerned.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

from mmzoo.errors import HubError, MmzooError, SpecError
from mmzoo.hub.settings import HubSettings
from mmzoo.saved import CONFIG_NAME, WEIGHTS_NAME


def where_in_repo(repo_id: str, revision: str | None, filename: str | None = None) -> str:
    at = f"{repo_id}@{revision}" if revision else repo_id
    return f"'{filename}' in {at}" if filename else at


def _is_connection_error(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ConnectionError", "ConnectError", "TimeoutException", "ConnectTimeout", "Timeout"})


def translate_error(exc: BaseException, repo_id: str, revision: str | None, filename: str | None = None,
                    *, settings: HubSettings, writing: bool = False, has_token: bool = True) -> MmzooError:
    """Turn a ``huggingface_hub`` exception into a :class:`HubError` that says what and what to do."""
    from huggingface_hub import errors as hf

    where = where_in_repo(repo_id, revision, filename)
    endpoint = settings.endpoint
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, hf.RevisionNotFoundError):
        return HubError(f"revision '{revision}' does not exist in Hub repo {repo_id} ({endpoint}); use a branch, "
                        f"tag or full commit sha of that repo, or leave the revision out for 'main'")
    remote_missing = getattr(hf, "RemoteEntryNotFoundError", hf.EntryNotFoundError)  # its name before 1.0
    if isinstance(exc, remote_missing) and not isinstance(exc, hf.LocalEntryNotFoundError):
        return HubError(f"Hub repo {where_in_repo(repo_id, revision)} has no file '{filename}' ({endpoint}); "
                        f"an mmzoo model repo holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    if isinstance(exc, hf.RepositoryNotFoundError) and not (writing and status in (401, 403)):
        return HubError(f"Hub repo {repo_id} was not found at {endpoint}; check the name, and for a private "
                        f"repo set HF_TOKEN (or `hf auth login`) to a token that can read it")
    if isinstance(exc, (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled)) or _is_connection_error(exc):
        if settings.offline:
            return HubError(f"HF_HUB_OFFLINE is set and {where} is not in the Hub cache ({settings.cache_dir}); "
                            f"download it once online, or unset HF_HUB_OFFLINE")
        return HubError(f"cannot reach the Hub at {endpoint} and {where} is not in the Hub cache "
                        f"({settings.cache_dir}); check the network and HF_ENDPOINT")
    if status == 401 and writing and not has_token:
        return HubError(f"pushing to {repo_id} needs a Hub token with write access ({endpoint} answered 401); "
                        f"pass --token (token=) or set HF_TOKEN, or log in with `hf auth login`")
    if status == 401:
        return HubError(f"the Hub at {endpoint} refused the token for {repo_id} (401): it is not valid or has "
                        f"expired; set HF_TOKEN (or --token) to a valid token")
    if status == 403:
        return HubError(f"the Hub at {endpoint} refused access to {repo_id} (403): the token has no "
                        f"{'write' if writing else 'read'} permission there; use a token that does")
    kind = f"HTTP {status}" if status else type(exc).__name__
    return HubError(f"the Hub at {endpoint} failed on {where} ({kind}); try again later")


_CUT_SHORT = re.compile(r"Consistency check failed: file should be of size (\d+) but has size (\d+)")


def cut_short(exc: BaseException, repo_id: str, revision: str | None, filename: str | None,
              settings: HubSettings) -> HubError | None:
    """The HubError for huggingface_hub's ``OSError: Consistency check failed`` (a download that ended
    before the whole file arrived), or None for any other error. huggingface_hub downloads into a
    temporary file it deletes on failure, so nothing partial stays in the cache and a retry starts afresh."""
    match = _CUT_SHORT.search(str(exc)) if isinstance(exc, OSError) else None
    if match is None:
        return None
    expected, got = match.groups()
    return HubError(f"the download of {where_in_repo(repo_id, revision, filename)} from {settings.endpoint} was cut "
                    f"short ({got} of {expected} bytes arrived): the connection dropped or a proxy truncated it. "
                    f"Nothing partial was kept in the Hub cache; run the same call again to download it afresh")


@contextmanager
def hub_errors(repo_id: str, revision: str | None, filename: str | None, settings: HubSettings,
                *, writing: bool = False, has_token: bool = True):
    from huggingface_hub import errors as hf

    try:
        yield
    except MmzooError:
        raise
    except Exception as exc:
        hub_error = (hf.HfHubHTTPError, hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled)
        if isinstance(exc, hub_error) or _is_connection_error(exc):
            raise translate_error(exc, repo_id, revision, filename, settings=settings, writing=writing,
                                  has_token=has_token) from None
        if isinstance(exc, hf.HFValidationError):  # a repo id or revision the client itself refuses
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            where = where_in_repo(repo_id, revision)
            raise SpecError(f"{where}: not a valid Hub repo id or revision ({detail})") from None
        truncated = cut_short(exc, repo_id, revision, filename, settings)
        if truncated is not None:
            raise truncated from None
        raise
