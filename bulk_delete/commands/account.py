"""Which account a checkpoint belongs to: the host and keys its requests went to.

A checkpoint resumed with another LSQ_HOST or other keys would send the rest of its deletes to
another account, quietly: the plan's ProspectIds mean nothing there, or worse, something. So the
checkpoint keeps the host it sends to and a SHA-256 of host and access key (the same hash as the
machine's ledger keeps; never a key), and `run` and `verify` refuse another once it has used
one: a request queued, or a listing page read. Until then the run's own host and keys become
the checkpoint's (a first run with mistyped keys binds nothing). A checkpoint from before this
record is taken to be its last run's host, and its keys are taken on trust, once, with a note.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..config import Credentials, normalise_host
from ..errors import CheckpointMismatch
from ..store.ledger import account_id


class Bound(Protocol):
    """A file whose calls belong to one account: a purge's checkpoint, or a restore's."""

    location: str

    @property
    def meta(self) -> dict[str, str]: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def last_run_target(self) -> tuple[str, str]: ...

    def account_used(self) -> bool: ...


HOST_META = "host"  # the host the checkpoint's requests went to
ACCOUNT_META = "account"  # SHA-256 of that host and the access key (store.ledger.account_id)
# Who ran it, for the report: the keys' user as the preflight found it, and the job file a
# job's runs came from ("" for `run`), which gives the command that resumes.
ACCOUNT_USER = "account_user"
JOB_FILE = "job_file"


def keep_to_account(
    checkpoint: Bound,
    host: str,
    credentials: Credentials,
    *,
    bind: bool,
    on_notice: Callable[[str], None],
) -> None:
    """Refuse (exit 2, nothing sent) a host or keys other than those the checkpoint's requests
    went to; with ``bind`` (a `run`), record this run's when it has none that count yet."""
    meta = checkpoint.meta
    account = account_id(host, credentials.access_key)
    recorded = meta.get(ACCOUNT_META, "")
    was = normalise_host(meta.get(HOST_META) or checkpoint.last_run_target()[0])
    if was and checkpoint.account_used():
        other_keys = bool(recorded) and recorded != account_id(was, credentials.access_key)
        if was != host or other_keys:
            raise CheckpointMismatch(_refusal(checkpoint, was, host, other_keys, bool(recorded)))
        if not recorded and bind:
            on_notice(
                f"checkpoint {checkpoint.location} is from before checkpoints recorded their "
                f"keys: taking these keys as the ones its requests went to at {host}"
            )
    if bind and (meta.get(HOST_META) != host or recorded != account):
        checkpoint.set_meta(HOST_META, host)
        checkpoint.set_meta(ACCOUNT_META, account)


def remember_user(checkpoint: Bound, user: str) -> None:
    """Whose keys sent, as the preflight found them: the report names the account by it."""
    if user and checkpoint.meta.get(ACCOUNT_USER) != user:
        checkpoint.set_meta(ACCOUNT_USER, user)


def _refusal(checkpoint: Bound, was: str, host: str, other_keys: bool, known: bool) -> str:
    if was == host:
        what = f"went to {host} with another access key"
    else:
        keys = "other keys" if other_keys else "the same keys" if known else "keys not recorded"
        what = f"went to {was}, not {host} ({keys})"
    return (
        f"checkpoint {checkpoint.location}: its requests {what}. Nothing sent: resuming it "
        "here would send the rest of its deletes to another account. Resume it with the host "
        "and keys it was run with, or give another --checkpoint for this account."
    )
