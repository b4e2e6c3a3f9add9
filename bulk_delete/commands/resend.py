"""A plan already sent is not sent again by accident (the machine's memory: store/sent_plans.py).

`run` and `job` refuse a new plan (its checkpoint holds none yet) that this machine sent to the
same account under another checkpoint, naming that checkpoint and the date, unless --again; a
resume of the same checkpoint goes on as ever. `plan` warns instead. A memory that cannot be
used is said by name and the run goes on, as with the ledger without a daily limit: stopping
every run of a machine whose state folder is read-only would teach people to pass --again.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import Credentials
from ..errors import SentBefore, SentPlansUnusable
from ..store.sent_plans import Sent, remember, sent_before
from .common import fingerprints_of, host_of
from .spec import RunSpec, flag_of


def refuse_resend(
    spec: RunSpec, credentials: Credentials, checkpoint: str, on_notice: Callable[[str], None]
) -> None:
    """SentBefore when this new plan went to this account before (and not --again). A
    memory that cannot be read is said by name, and the run goes on, as the ledger's rule."""
    if spec.again:
        return
    try:
        earlier = sent_before(fingerprints_of(spec), host_of(spec), credentials.access_key)
    except SentPlansUnusable as error:
        on_notice(error.warning)
        return
    if earlier:
        first = earlier[0]
        more = f" (and {len(earlier) - 1:,} time(s) since)" if len(earlier) > 1 else ""
        go_on = (
            f"rerun the command that sent it (its checkpoint: {first.checkpoint})"
            if spec.label  # a job's checkpoint is its own: it cannot take another's
            else f"rerun with --checkpoint {first.checkpoint}"
        )
        raise SentBefore(
            f"nothing sent: this machine sent this plan (the same sheet and options) to "
            f"{first.host} on {first.when} under the checkpoint {first.checkpoint}{more}. "
            f"To go on with that run, {go_on}; to send it again under {checkpoint}, pass "
            f"{flag_of('again')}."
        )


def record_sent(
    spec: RunSpec,
    credentials: Credentials,
    checkpoint: str,
    fingerprint: str,
    *,
    wall: Callable[[], float],
    on_notice: Callable[[str], None],
) -> None:
    """Keep that the plan goes out under ``checkpoint``, before its first delete. A memory
    that cannot be written is said by name."""
    try:
        remember(fingerprint, host_of(spec), credentials.access_key, checkpoint, at=wall())
    except SentPlansUnusable as error:
        on_notice(error.warning)


def earlier_sends(spec: RunSpec, credentials: Credentials | None) -> tuple[tuple[Sent, ...], str]:
    """For a dry run: the earlier sends of this plan (to this account when the keys are
    set, else to any), and a warning when the memory cannot be read."""
    key = credentials.access_key if credentials is not None and spec.host else None
    try:
        host = host_of(spec) if key is not None else ""
        return tuple(sent_before(fingerprints_of(spec), host, key)), ""
    except SentPlansUnusable as error:
        return (), error.warning.removeprefix("warning: ")
