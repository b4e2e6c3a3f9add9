"""The checkpoint's rows in the export's column order (the export module writes them)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .schema import BATCH
from .tables import Tables


class ExportRows(Tables):
    """Requests and invalid rows, read back for `export`."""

    def export_rows(self, statuses: Iterable[str]) -> Iterator[tuple[Any, ...]]:
        """Rows in the export's column order; ``invalid`` rows come from the invalid table.
        An invalid row's dates are the sheet's text, never converted: they go in the last
        two columns ("as written"), and its FromDate/ToDate stay empty."""
        wanted = set(statuses)
        request_statuses = sorted(wanted & {"queued", "failed", "pending"})
        verify = (
            "verified, remaining, verified_at"
            if "verified" in self._columns("requests")
            else "'', NULL, ''"  # a checkpoint from before `verify`, opened read-only
        )
        if request_statuses:
            marks = ", ".join("?" * len(request_statuses))
            cursor = self._db.execute(
                "SELECT prospect_id, codes, from_date, to_date, webhook, status, attempts,"
                f" http_status, error, source_rows, updated_at, {verify}, '', '' FROM requests"
                f" WHERE status IN ({marks}) ORDER BY seq",
                request_statuses,
            )
            while rows := cursor.fetchmany(BATCH):
                yield from rows
        if "invalid" in wanted:
            stamp = self.meta.get("created_at", "")
            cursor = self._db.execute(
                "SELECT prospect_id, codes, from_date, to_date, webhook, row, reason"
                " FROM invalid_rows ORDER BY row"
            )
            while rows := cursor.fetchmany(BATCH):
                for pid, codes, from_date, to_date, webhook, row, reason in rows:
                    yield (
                        pid,
                        codes,
                        "",
                        "",
                        webhook,
                        "invalid",
                        0,
                        None,
                        reason,
                        str(row),
                        stamp,
                        "",
                        None,
                        "",
                        from_date,
                        to_date,
                    )

    def request_extras(self, statuses: Iterable[str]) -> Iterator[str]:
        """Each request's extra cells (a JSON list, or ""), in the order of ``export_rows``
        for the same request statuses; "" for every request of a checkpoint from before."""
        wanted = sorted(set(statuses) & {"queued", "failed", "pending"})
        column = "extra" if "extra" in self._columns("requests") else "''"
        cursor = self._db.execute(
            f"SELECT {column} FROM requests WHERE status IN ({', '.join('?' * len(wanted))})"
            " ORDER BY seq",
            wanted,
        )
        while rows := cursor.fetchmany(BATCH):
            for (extra,) in rows:
                yield extra
