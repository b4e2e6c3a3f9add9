"""What `verify` found, request by request, in the checkpoint."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..summary import Verification
from .tables import Tables


@dataclass(frozen=True, slots=True)
class Verifiable:
    """A queued request to check: what should be gone from that lead."""

    seq: int
    prospect_id: str
    codes: tuple[str, ...]
    from_date: str
    to_date: str


class VerificationTable(Tables):
    """The ``verified`` columns of the requests table."""

    def to_verify(self, sample: int | None, rng: random.Random) -> list[Verifiable]:
        """Queued requests not yet confirmed (all, or a random ``sample`` of them)."""
        rows = self._db.execute(
            "SELECT seq, prospect_id, codes, from_date, to_date FROM requests"
            " WHERE status = 'queued' AND verified != 'confirmed' ORDER BY seq"
        ).fetchall()
        if sample is not None and sample < len(rows):
            rows = sorted(rng.sample(rows, sample))
        return [
            Verifiable(seq, lead, tuple(codes.split(";")), low, high)
            for seq, lead, codes, low, high in rows
        ]

    def record_verified(
        self, seq: int, verified: str, remaining: int | None, note: str = ""
    ) -> None:
        """``note``: why a request stays unverified."""
        with self._storing("record a check"):
            self._db.execute(
                "UPDATE requests SET verified = ?, remaining = ?, verified_at = ?,"
                " verified_note = ? WHERE seq = ?",
                (verified, remaining, self.now_text(), note, seq),
            )

    def verified_remaining(self) -> dict[int, int]:
        """Each checked request's activities still present (confirmed: 0), by seq."""
        rows = self._db.execute(
            "SELECT seq, COALESCE(remaining, 0) FROM requests"
            " WHERE verified IN ('confirmed', 'remaining')"
        ).fetchall()
        return {int(seq): int(left) for seq, left in rows}

    def queued_leads(self) -> dict[int, str]:
        """Each queued request's lead, by seq: the requests a --backup must hold a copy of."""
        rows = self._db.execute(
            "SELECT seq, prospect_id FROM requests WHERE status = 'queued' ORDER BY seq"
        ).fetchall()
        return {int(seq): str(lead) for seq, lead in rows}

    def sent_requests(self) -> list[int]:
        """Every request a delete of which may have gone out (``was_sent``), in order: each
        has a member in a backup, written before its first send."""
        rows = self._db.execute(
            "SELECT seq FROM requests WHERE status = 'queued' OR attempts > 0 ORDER BY seq"
        ).fetchall()
        return [int(seq) for (seq,) in rows]

    def was_sent(self, seq: int) -> bool:
        """Whether a delete of this request may have gone out: queued, or an attempt recorded
        (a backup's torn last member of such a request was cut after its delete, not by it)."""
        row = self._db.execute(
            "SELECT status = 'queued' OR attempts > 0 FROM requests WHERE seq = ?", (seq,)
        ).fetchone()
        return bool(row and row[0])

    def unverified_notes(self, limit: int = 3) -> list[tuple[str, int]]:
        """(why, how many) of the requests left unverified, most frequent first."""
        if "verified_note" not in self._columns("requests"):
            return []
        rows = self._db.execute(
            "SELECT verified_note, COUNT(*) FROM requests WHERE verified = 'unverified'"
            " AND verified_note != '' GROUP BY verified_note ORDER BY COUNT(*) DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [(str(note), int(count)) for note, count in rows]

    def verification(self) -> Verification:
        if "verified" not in self._columns("requests"):
            return Verification()
        rows = self._db.execute(
            "SELECT verified, COUNT(*), SUM(COALESCE(remaining, 0)),"
            " COUNT(DISTINCT prospect_id) FROM requests WHERE verified != '' GROUP BY verified"
        ).fetchall()
        by = {verified: (count, left, leads) for verified, count, left, leads in rows}
        remaining = by.get("remaining", (0, 0, 0))
        return Verification(
            checked=sum(count for count, _, _ in by.values()),
            confirmed=by.get("confirmed", (0, 0, 0))[0],
            remaining_requests=remaining[0],
            remaining_activities=remaining[1],
            remaining_leads=remaining[2],
            unverified=by.get("unverified", (0, 0, 0))[0],
        )
