"""The runs table: one row per run, its figures written when it ends and read back by
`status` and the summary.
"""

from __future__ import annotations

from ..summary import RunFigures, RunResult
from .schema import _ADDED_COLUMNS
from .tables import Tables

# RunFigures' fields as the runs table names them (the 429 count kept its first column name).
_RUN_COLUMNS = {
    "calls": "calls",
    "queued": "queued",
    "failed": "failed",
    "rate_limited_429": "rate_limited",
    "send_seconds": "send_seconds",
    "start_span": "start_span",
    "limit_per_second": "limit_per_second",
    "busiest_share": "busiest_share",
    "busiest_per_second": "busiest_per_second",
}


class RunsTable(Tables):
    """Each run's figures, as the ``runs`` table keeps them."""

    def start_run(self, *, host: str, rate: str) -> int:
        with self._storing("start a run", sending=False):
            cursor = self._db.execute(
                "INSERT INTO runs (started_at, host, rate) VALUES (?, ?, ?)",
                (self.now_text(), host, rate),
            )
        return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, stats: RunFigures, rate: str = "") -> None:
        """The run's figures; ``rate``: the limit in force at its end (a learned one, say),
        which its share of the limit is measured against."""
        with self._storing("record the run's end"):
            self._finish_run(run_id, stats, rate)

    def _finish_run(self, run_id: int, stats: RunFigures, rate: str) -> None:
        self._db.execute(
            "UPDATE runs SET rate = COALESCE(NULLIF(?, ''), rate), finished_at = ?, calls = ?,"
            " queued = ?, failed = ?, rate_limited = ?,"
            " send_seconds = ?, result = ?, start_span = ?, limit_per_second = ?,"
            " busiest_share = ?, busiest_per_second = ? WHERE id = ?",
            (
                rate,
                self.now_text(),
                stats.calls,
                stats.queued,
                stats.failed,
                stats.rate_limited_429,
                stats.send_seconds,
                stats.result,
                stats.start_span,
                stats.limit_per_second,
                stats.busiest_share,
                stats.busiest_per_second,
                run_id,
            ),
        )

    def last_run(self) -> RunFigures | None:
        # A checkpoint from before a column was added (read-only: never migrated) reads 0/NULL.
        have = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        added = {name: "0" if "NOT NULL" in kind else "NULL" for _, name, kind in _ADDED_COLUMNS}
        names = ("result", *_RUN_COLUMNS.values())
        columns = ", ".join(name if name in have else added[name] for name in names)
        row = self._db.execute(f"SELECT {columns} FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        result, *figures = row
        return RunFigures(result=RunResult(result), **dict(zip(_RUN_COLUMNS, figures, strict=True)))

    def last_run_target(self) -> tuple[str, str]:
        """The host and the rate the last run sent at; blank before any run."""
        row = self._db.execute("SELECT host, rate FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return ("", "") if row is None else (str(row[0]), str(row[1]))

    def run_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
