"""Scheduled cleanup runs: a job file (TOML) under version control becomes a run config.

A job picks its own date window at run time, keeps one checkpoint per run date in its state
directory (a run interrupted today resumes today's; yesterday's is left alone), and holds a
lock so two instances never run at once. Keys never live in the file: it names the
environment variables that hold them.

Relative windows are whole days in the job's time zone. ``older_than_days = 90`` on a run
dated D means ToDate = 23:59:59 on D − 91 (everything before the start of D − 90), and
``window_days = 30`` means FromDate = 00:00:00 on D − 90 − 30. Whole days keep the window —
and so the plan's fingerprint — the same all day, so a rerun the same day resumes.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CODES_PER_REQUEST,
    DEFAULT_PLAN,
    DEFAULT_TIMEOUT,
    DEFAULT_TZ,
    ENV_ACCESS_KEY,
    ENV_HOST,
    ENV_SECRET_KEY,
    Credentials,
    RateLimit,
    normalise_host,
    parse_codes,
)
from .errors import InputError, LockHeld, OptionError
from .pipeline import RunConfig
from .plan import PlanOptions
from .rows import load_tz

_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_SECRET_WORDS = ("secret", "password", "token", "accesskey", "access_key", "apikey", "api_key")

# key → (types accepted, description for messages)
_TOP_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "input": ((str,), "a path relative to the job file"),
    "sheet": ((str,), "an Excel sheet name"),
    "codes": ((list, str, int), "a list of activity codes"),
    "tz": ((str,), "an IANA time zone"),
    "rate": ((str,), "N/Ws such as 25/5s"),
    "plan": ((str,), "a LeadSquared plan name"),
    "concurrency": ((int,), "a whole number"),
    "max_attempts": ((int,), "a whole number"),
    "max_codes_per_request": ((int,), "a whole number"),
    "timeout": ((int, float), "seconds"),
    "webhook": ((str,), "an http(s) URL"),
    "state_dir": ((str,), "a path relative to the job file"),
    "confirm": ((bool,), "true or false"),
    "auth": ((str,), '"header" or "query"'),
    "window": ((dict,), "a table"),
    "env": ((dict,), "a table"),
}
_WINDOW_KEYS = {"older_than_days": (int,), "window_days": (int,), "from": (str,), "to": (str,)}
_ENV_KEYS = {"host", "access_key", "secret_key"}


@dataclass(frozen=True, kw_only=True)
class Window:
    from_date: str = ""  # absolute, as written (YYYY-MM-DD [HH:MM:SS])
    to_date: str = ""
    older_than_days: int | None = None
    window_days: int | None = None

    def resolve(self, run_date: dt.date) -> tuple[str, str]:
        """(FromDate, ToDate) in the job's local time, as plan options."""
        if self.older_than_days is None and self.window_days is None:
            return self.from_date, self.to_date
        end = run_date - dt.timedelta(days=self.older_than_days or 0)
        to_date = (end - dt.timedelta(days=1)).isoformat() if self.older_than_days else ""
        from_date = (
            (end - dt.timedelta(days=self.window_days)).isoformat() if self.window_days else ""
        )
        return from_date, to_date


@dataclass(frozen=True, kw_only=True)
class Job:
    name: str
    path: Path
    input: Path
    sheet: str | None = None
    codes: tuple[str, ...] = ()
    tz: str = DEFAULT_TZ
    rate: RateLimit = field(default_factory=lambda: RateLimit.parse(DEFAULT_PLAN))
    concurrency: int | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_codes_per_request: int = DEFAULT_MAX_CODES_PER_REQUEST
    timeout: float = DEFAULT_TIMEOUT
    webhook: str = ""
    state_dir: Path
    confirm: bool = False
    auth: str = "header"
    window: Window = field(default_factory=Window)
    host_var: str = ENV_HOST
    access_key_var: str = ENV_ACCESS_KEY
    secret_key_var: str = ENV_SECRET_KEY

    def run_date(self, now: dt.datetime) -> dt.date:
        return now.astimezone(load_tz(self.tz)).date()

    def plan_options(self, now: dt.datetime) -> PlanOptions:
        from_date, to_date = self.window.resolve(self.run_date(now))
        return PlanOptions(
            codes=self.codes,
            from_date=from_date,
            to_date=to_date,
            webhook=self.webhook,
            tz=self.tz,
            sheet=self.sheet,
            max_codes_per_request=self.max_codes_per_request,
        )

    def checkpoint(self, now: dt.datetime) -> Path:
        return self.state_dir / f"{self.name}-{self.run_date(now).isoformat()}.sqlite"

    def host(self, env: Mapping[str, str]) -> str:
        value = env.get(self.host_var, "")
        if not value.strip():
            from .errors import CredentialsError

            raise CredentialsError(f"job {self.name}: no host: set {self.host_var}")
        return normalise_host(value)

    def run_config(
        self,
        now: dt.datetime,
        env: Mapping[str, str],
        *,
        summary_json: Path | None = None,
        log_file: Path | None = None,
    ) -> RunConfig:
        """Everything `run` needs, with today's window and today's checkpoint."""
        return RunConfig(
            input=self.input,
            options=self.plan_options(now),
            checkpoint=self.checkpoint(now),
            host=self.host(env),
            credentials=self.credentials(env),
            rate=self.rate,
            concurrency=self.concurrency,
            max_attempts=self.max_attempts,
            timeout=self.timeout,
            auth="query" if self.auth == "query" else "header",
            summary_json=summary_json,
            log_file=log_file,
            label=self.name,
        )

    def credentials(self, env: Mapping[str, str]) -> Credentials:
        return Credentials.from_env(
            env, access_var=self.access_key_var, secret_var=self.secret_key_var
        )


def load_job(path: str | Path, *, state_dir: Path | None = None) -> Job:
    """Read and check a job file. Every problem is an OptionError/InputError (exit 2)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such job file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise OptionError(f"{path}: not a valid TOML job file: {error}") from None
    where = f"{path}"
    _refuse_literal_secrets(where, raw)
    for key, value in raw.items():
        if key not in _TOP_KEYS:
            raise OptionError(f"{where}: unknown key {key!r}; known keys: {', '.join(_TOP_KEYS)}")
        types, description = _TOP_KEYS[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise OptionError(f"{where}: {key} must be {description}, not {value!r}")
    if "input" not in raw:
        raise OptionError(f"{where}: the key 'input' is required (the sheet to read)")
    base = path.parent
    sheet_path = (base / raw["input"]).resolve()
    if not sheet_path.is_file():
        raise InputError(f"{where}: input {raw['input']!r} not found (looked for {sheet_path})")
    if "rate" in raw and "plan" in raw:
        raise OptionError(f"{where}: give either rate or plan, not both")
    rate = RateLimit.parse(str(raw.get("rate") or raw.get("plan") or DEFAULT_PLAN))
    codes = raw.get("codes", ())
    if isinstance(codes, list):
        codes = ",".join(str(code) for code in codes)
    tz = str(raw.get("tz", DEFAULT_TZ))
    load_tz(tz)
    for key in ("concurrency", "max_attempts", "max_codes_per_request", "timeout"):
        if key in raw and raw[key] <= 0:
            raise OptionError(f"{where}: {key} must be positive, not {raw[key]!r}")
    auth = str(raw.get("auth", "header"))
    if auth not in ("header", "query"):
        raise OptionError(f'{where}: auth must be "header" or "query", not {auth!r}')
    env_names = _env_names(where, raw.get("env", {}))
    return Job(
        name=path.stem,
        path=path.resolve(),
        input=sheet_path,
        sheet=raw.get("sheet") or None,
        codes=parse_codes(str(codes)) if codes else (),
        tz=tz,
        rate=rate,
        concurrency=raw.get("concurrency"),
        max_attempts=raw.get("max_attempts", DEFAULT_MAX_ATTEMPTS),
        max_codes_per_request=raw.get("max_codes_per_request", DEFAULT_MAX_CODES_PER_REQUEST),
        timeout=float(raw.get("timeout", DEFAULT_TIMEOUT)),
        webhook=raw.get("webhook", ""),
        state_dir=(state_dir or base / raw.get("state_dir", "state")).resolve(),
        confirm=raw.get("confirm", False),
        auth=auth,
        window=_window(where, raw.get("window", {})),
        **env_names,
    )


def _window(where: str, table: dict[str, Any]) -> Window:
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
    return Window(
        from_date=table.get("from", ""),
        to_date=table.get("to", ""),
        older_than_days=table.get("older_than_days"),
        window_days=table.get("window_days"),
    )


def _env_names(where: str, table: dict[str, Any]) -> dict[str, str]:
    names = {
        "host_var": ENV_HOST,
        "access_key_var": ENV_ACCESS_KEY,
        "secret_key_var": ENV_SECRET_KEY,
    }
    for key, value in table.items():
        if key not in _ENV_KEYS:
            raise OptionError(
                f"{where}: unknown key env.{key}; known: host, access_key, secret_key"
            )
        if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
            raise OptionError(
                f"{where}: env.{key} must be the NAME of an environment variable (like "
                f"LSQ_SECRET_KEY); it looks like a literal value. Keys never go in job files."
            )
        names[f"{key}_var"] = value
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


@contextmanager
def job_lock(job: Job) -> Iterator[Path]:
    """Hold the job's lock for the block; another holder means exit 75 at once."""
    job.state_dir.mkdir(parents=True, exist_ok=True)
    path = job.state_dir / f"{job.name}.lock"
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise LockHeld(
                f"job {job.name} is already running (pid {holder} holds {path}); not starting"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield path
    finally:
        handle.close()  # closing releases the lock
