"""A plan already sent is not sent again by accident (the machine's memory: store/sent_plans.py).

`run` and `job` refuse a new plan (its checkpoint holds none yet) that this machine sent to the
same account under another checkpoint, naming that checkpoint and the date, unless --again; a
resume goes on as ever. `plan` warns instead. The same plan: the same sheet and options (before
the sheet is read), or the same requests (plan/sends.py, once built, before it is stored). A
memory that cannot be used is said by name and the run goes on, as with the ledger without a
daily limit: stopping every run of a machine whose state folder is read-only would teach people
to pass --again.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import Credentials
from ..errors import SentBefore, SentPlansUnusable
from ..store.sent_plans import Sent, remember, sent_before
from .common import fingerprints_of, host_of
from .spec import RunSpec, flag_of

REQUESTS_FINGERPRINT = "requests_fingerprint"  # checkpoint meta: what its plan sends


def refuse_resend(
    spec: RunSpec,
    credentials: Credentials,
    checkpoint: str,
    on_notice: Callable[[str], None],
    *,
    requests: str = "",
) -> bool:
    """SentBefore when this new plan went to this account before (and not --again): by its
    sheet and options, or, once built, by its ``requests`` fingerprint alone. Whether the
    memory could be read: one that cannot is said by name (once: the caller asks no more),
    and the run goes on, as the ledger's rule."""
    if spec.again:
        return True
    plans = frozenset() if requests else fingerprints_of(spec)
    try:
        earlier = sent_before(plans, host_of(spec), credentials.access_key, requests=requests)
    except SentPlansUnusable as error:
        on_notice(error.warning)
        return False
    if earlier:
        raise _sent_before(earlier, spec, checkpoint)
    return True


def _sent_before(earlier: list[Sent], spec: RunSpec, checkpoint: str) -> SentBefore:
    first = earlier[0]
    more = f" (and {len(earlier) - 1:,} time(s) since)" if len(earlier) > 1 else ""
    same = "the same sheet and options" if first.same_file else "the same requests"
    go_on = (
        f"rerun the command that sent it (its checkpoint: {first.checkpoint})"
        # a job's checkpoint is its own; another sheet or options cannot resume it
        if spec.label or not first.same_file
        else f"rerun with --checkpoint {first.checkpoint}"
    )
    return SentBefore(
        f"nothing sent: this machine sent this plan ({same}) to "
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
    requests: str,
    wall: Callable[[], float],
    on_notice: Callable[[str], None],
) -> None:
    """Keep that the plan (its ``fingerprint``, and its ``requests`` one when its checkpoint
    knows it) goes out under ``checkpoint``, before its first delete. A memory that cannot be
    written is said by name."""
    key = credentials.access_key
    try:
        remember(fingerprint, host_of(spec), key, checkpoint, at=wall(), requests=requests)
    except SentPlansUnusable as error:
        on_notice(error.warning)


def earlier_sends(
    spec: RunSpec, credentials: Credentials | None, requests: str = ""
) -> tuple[tuple[Sent, ...], str]:
    """For a dry run: the earlier sends of this plan, by its sheet and options or by its
    ``requests`` (to this account when the keys are set, else to any), and a warning when the
    memory cannot be read."""
    key = credentials.access_key if credentials is not None and spec.host else None
    try:
        host = host_of(spec) if key is not None else ""
        return tuple(sent_before(fingerprints_of(spec), host, key, requests=requests)), ""
    except SentPlansUnusable as error:
        return (), error.warning.removeprefix("warning: ")
