"""Scheduled cleanup runs: a job file (TOML) under version control becomes a run config.

A job picks its own window at run time in whole days of its time zone (``older_than_days``,
``window_days``), keeps one checkpoint per run date in its state directory, and holds a lock
so two instances never run at once. Keys never live in the file: it names the environment
variables that hold them.

Why whole days: docs/design/jobs.md.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import tomllib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import (
    DEFAULT_PLAN,
    ENV_ACCESS_KEY,
    ENV_HOST,
    ENV_SECRET_KEY,
    Credentials,
    normalise_host,
    require_host,
)
from ..errors import BulkDeleteError, InputError, OptionError
from ..files import hold_lock, not_a_file, require_file
from ..plan.rules import load_tz
from ..store.checkpoint import Checkpoint
from .spec import RunSpec, job_keys

_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_SECRET_WORDS = ("secret", "password", "token", "accesskey", "access_key", "apikey", "api_key")

# Keys of a job file that are not RunSpec options (those come from spec.job_keys()).
_JOB_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "input": ((str,), "a path relative to the job file"),
    "plan": ((str,), "a LeadSquared plan name"),
    "state_dir": ((str,), "a path relative to the job file"),
    "confirm": ((bool,), "true or false"),
    "verify_previous": ((bool,), "true or false"),
    "window": ((dict,), "a table"),
    "env": ((dict,), "a table"),
}
_WINDOW_KEYS = {"older_than_days": (int,), "window_days": (int,), "from": (str,), "to": (str,)}
_ENV_DEFAULTS = {"host": ENV_HOST, "access_key": ENV_ACCESS_KEY, "secret_key": ENV_SECRET_KEY}


@dataclass(frozen=True, kw_only=True)
class JobWindow:
    from_date: str = ""  # absolute, as written (YYYY-MM-DD [HH:MM:SS])
    to_date: str = ""
    older_than_days: int | None = None
    window_days: int | None = None

    @property
    def relative(self) -> bool:
        return self.older_than_days is not None or self.window_days is not None

    def resolve(self, run_date: dt.date) -> tuple[str, str]:
        """(FromDate, ToDate) in the job's local time, as plan options."""
        if not self.relative:
            return self.from_date, self.to_date
        try:
            end = run_date - dt.timedelta(days=self.older_than_days or 0)
            to_date = (end - dt.timedelta(days=1)).isoformat() if self.older_than_days else ""
            from_date = (
                (end - dt.timedelta(days=self.window_days)).isoformat() if self.window_days else ""
            )
        except OverflowError:  # before the year 1: the calendar has no such day
            days = (self.older_than_days or 0) + (self.window_days or 0)
            raise OptionError(
                f"the window ({days:,} days before {run_date.isoformat()}) would start before "
                "the year 1; check window.older_than_days and window.window_days (or --as-of)"
            ) from None
        return from_date, to_date


@dataclass(frozen=True, kw_only=True)
class Job:
    name: str
    path: Path
    spec: RunSpec  # every option the file sets; the window, host and checkpoint come per run
    state_dir: Path
    confirm: bool = False
    verify_previous: bool = False  # verify the previous run's checkpoint before this run
    window: JobWindow = field(default_factory=JobWindow)
    env_names: Mapping[str, str] = field(default_factory=lambda: dict(_ENV_DEFAULTS))

    def run_date(self, now: dt.datetime) -> dt.date:
        return now.astimezone(load_tz(self.spec.tz)).date()

    def moment(self, as_of: dt.date | None, now: dt.datetime) -> dt.datetime:
        """When this run happens: ``now``, or (``--as-of``) noon of that date in the job's tz,
        to catch up a missed night or try a job on data from another time."""
        if as_of is None:
            return now
        return dt.datetime.combine(as_of, dt.time(12), tzinfo=load_tz(self.spec.tz))

    def checkpoint(self, now: dt.datetime) -> Path:
        """A relative window moves every day, so each run date has its own checkpoint; an
        absolute one does not, so every run resumes the job's one checkpoint and sends only
        what is left (a nightly retry never sends the same requests again)."""
        if not self.window.relative:
            return self.state_dir / f"{self.name}.sqlite"
        return self.state_dir / f"{self.name}-{self.run_date(now).isoformat()}.sqlite"

    def holding(self, fingerprints: frozenset[str]) -> list[Path]:
        """Other jobs' checkpoints in the state directory whose plan has one of these
        fingerprints (same input bytes, codes and window, its zone under any of its names): a
        copy of this job file under another name."""
        mine = re.compile(re.escape(self.name) + r"(-\d{4}-\d{2}-\d{2})?\.sqlite")
        found = []
        for path in sorted(self.state_dir.glob("*.sqlite")):
            if not mine.fullmatch(path.name) and _fingerprint_in(path) in fingerprints:
                found.append(path)
        return found

    def run_spec(self, now: dt.datetime, env: Mapping[str, str] | None = None) -> RunSpec:
        """The spec of the run dated ``now``: today's window and today's checkpoint, and the
        host from the environment when ``env`` is given (a dry run needs none)."""
        try:
            from_date, to_date = self.window.resolve(self.run_date(now))
        except OptionError as error:
            raise OptionError(f"job {self.name}: {error}") from None
        host = ""
        if env is not None:
            variable = self.env_names["host"]
            try:
                host = require_host(normalise_host(env.get(variable, "")), variable)
            except OptionError as error:
                raise OptionError(f"job {self.name}: {variable}: {error}") from None
        return self.spec.replace(
            from_date=from_date, to_date=to_date, checkpoint=self.checkpoint(now), host=host
        ).replace(backup=self.backup(now))

    def backup(self, now: dt.datetime) -> Path | None:
        """The run's backup file: one per dated checkpoint. ``{date}`` in the job's
        ``backup`` becomes the run date; without it, a relative window's run date goes before
        the file's suffixes (``purge.jsonl.gz`` → ``purge-2026-11-30.jsonl.gz``). A relative
        path is relative to the job file, as ``input`` is."""
        if self.spec.backup is None:
            return None
        path = (
            self.spec.backup
            if self.spec.backup.is_absolute()
            else self.path.parent / self.spec.backup
        )
        date = self.run_date(now).isoformat()
        if "{date}" in path.name:
            return path.with_name(path.name.replace("{date}", date))
        if not self.window.relative:
            return path
        stem, _, suffixes = path.name.partition(".")
        return path.with_name(f"{stem}-{date}" + (f".{suffixes}" if suffixes else ""))

    def previous_checkpoint(self, now: dt.datetime) -> Path | None:
        """The checkpoint of the latest run dated before this one, if any."""
        today = self.checkpoint(now).name
        earlier = sorted(
            path
            for path in self.state_dir.glob(f"{self.name}-????-??-??.sqlite")
            if path.name < today
        )
        return earlier[-1] if earlier else None

    def unfinished(self, now: dt.datetime) -> tuple[Path, dt.datetime, int] | None:
        """The previous dated checkpoint while requests in it are still pending, the moment
        of its run and how many: the job finishes it before starting its own window, so a
        purge larger than a day's allowance goes on night after night without a human."""
        earlier = self.previous_checkpoint(now)
        if earlier is None:
            return None
        with Checkpoint.open_existing(earlier) as checkpoint:
            pending = checkpoint.counts().pending
        if not pending:
            return None
        return earlier, self.moment(dt.date.fromisoformat(earlier.stem[-10:]), now), pending

    def credentials(self, env: Mapping[str, str]) -> Credentials:
        return Credentials.from_env(
            env, access_var=self.env_names["access_key"], secret_var=self.env_names["secret_key"]
        )

    def lock(self) -> AbstractContextManager[None]:
        """The job's lock: a second instance of the same job exits 75 at once, also when
        started through another name for the job file (a symlink or a hard link)."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # a read-only file system, a parent that is a file
            raise InputError(
                f"job {self.name}: cannot create its state directory {self.state_dir}: "
                f"{error.strerror}; nothing sent (give a writable one with --state-dir)"
            ) from None
        return hold_lock(self.state_dir / f"{self.name}.lock", f"job {self.name}", target=self.path)


def _fingerprint_in(path: Path) -> str:
    """The plan fingerprint a checkpoint holds, read-only; "" for anything else."""
    try:
        with Checkpoint.open_existing(path) as checkpoint:
            return checkpoint.meta.get("fingerprint", "")
    except (BulkDeleteError, sqlite3.Error):
        return ""


def load_job(path: str | Path, *, state_dir: Path | None = None, wall: Callable[[], float]) -> Job:
    """Read and check a job file. Every problem is an OptionError/InputError (exit 2) that
    names the file and the key. A relative window is checked as it resolves on ``wall``'s
    day (the command's clock)."""
    path = Path(path)
    require_file(path, "job file", missing="no such job file")  # never a FIFO's endless read
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise OptionError(f"{path}: not a valid TOML job file: {error}") from None
    where = f"{path}"
    _refuse_literal_secrets(where, raw)
    options = job_keys()
    for key, value in raw.items():
        if key in _JOB_KEYS:
            types, description = _JOB_KEYS[key]
            if not isinstance(value, types):
                raise OptionError(f"{where}: {key} must be {description}, not {value!r}")
        elif key not in options:
            known = ", ".join([*_JOB_KEYS, *options])
            raise OptionError(f"{where}: unknown key {key!r}; known keys: {known}")
    base = path.parent
    discovering = raw.get("discover") is True
    if discovering == ("input" in raw):
        raise OptionError(
            f"{where}: give either 'input' (the sheet to read) or discover = true (list the "
            "leads from LeadSquared), not both or neither"
        )
    sheet_path = (base / raw["input"]).resolve() if "input" in raw else None
    if sheet_path is not None and (problem := not_a_file(sheet_path)) is not None:
        found = "not found" if problem == "no such file" else problem
        raise InputError(f"{where}: input {raw['input']!r} {found} (looked for {sheet_path})")
    if "rate" in raw and "plan" in raw:
        raise OptionError(f"{where}: give either rate or plan, not both")
    window = _window(where, raw.get("window", {}))
    if discovering and window.relative and not (window.older_than_days and window.window_days):
        raise OptionError(
            f"{where}: discover = true needs a window with both ends: set window.older_than_days "
            "and window.window_days (or window.from and window.to)"
        )
    values = {options[key]: value for key, value in raw.items() if key in options}
    values["rate"] = raw.get("rate") or raw.get("plan") or DEFAULT_PLAN
    # A relative window is checked as it resolves today; each run resolves it for its date.
    try:
        today = dt.datetime.fromtimestamp(wall(), dt.UTC).date()
        values["from_date"], values["to_date"] = window.resolve(today)
    except OptionError as error:
        raise OptionError(f"{where}: {error}") from None
    spec = RunSpec.from_values(values, source=where).replace(
        input=sheet_path, label=path.stem, source=where
    )
    return Job(
        name=path.stem,
        path=path.resolve(),
        spec=spec,
        state_dir=(state_dir or base / raw.get("state_dir", "state")).resolve(),
        confirm=raw.get("confirm", False),
        verify_previous=raw.get("verify_previous", False),
        window=window,
        env_names=_env_names(where, raw.get("env", {})),
    )


def _window(where: str, table: dict[str, Any]) -> JobWindow:
    table = {  # TOML's own dates (from = 2025-01-01, unquoted) mean the same as the text
        key: value.isoformat() if isinstance(value, dt.date) else value
        for key, value in table.items()
    }
    for key, value in table.items():
        if key not in _WINDOW_KEYS:
            raise OptionError(
                f"{where}: unknown key window.{key}; known: {', '.join(_WINDOW_KEYS)}"
            )
        if not isinstance(value, _WINDOW_KEYS[key]) or isinstance(value, bool):
            kind = "a whole number of days" if key.endswith("days") else "a date"
            raise OptionError(f"{where}: window.{key} must be {kind}, not {value!r}")
    relative = {"older_than_days", "window_days"} & set(table)
    absolute = {"from", "to"} & set(table)
    if relative and absolute:
        raise OptionError(
            f"{where}: [window] has both an absolute ({', '.join(sorted(absolute))}) and a "
            f"relative ({', '.join(sorted(relative))}) window; keep one"
        )
    for key in relative:
        if table[key] < 0 or (key == "window_days" and table[key] == 0):
            raise OptionError(f"{where}: window.{key} must be positive, not {table[key]}")
    return JobWindow(
        from_date=table.get("from", ""),
        to_date=table.get("to", ""),
        older_than_days=table.get("older_than_days"),
        window_days=table.get("window_days"),
    )


def _env_names(where: str, table: dict[str, Any]) -> dict[str, str]:
    names = dict(_ENV_DEFAULTS)
    for key, value in table.items():
        if key not in _ENV_DEFAULTS:
            raise OptionError(
                f"{where}: unknown key env.{key}; known: host, access_key, secret_key"
            )
        if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
            raise OptionError(
                f"{where}: env.{key} must be the NAME of an environment variable (like "
                f"{_ENV_DEFAULTS[key]}); its value looks like a literal. Keys never go in job "
                "files."
            )
        names[key] = value
    return names


def _refuse_literal_secrets(where: str, raw: dict[str, Any], prefix: str = "") -> None:
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if key != "env":
                _refuse_literal_secrets(where, value, f"{name}.")
            continue
        if any(word in key.lower().replace("-", "_") for word in _SECRET_WORDS):
            raise OptionError(
                f"{where}: {name} looks like a literal key; job files must not hold secrets. "
                "Put the key in the environment and name the variable under [env]."
            )
