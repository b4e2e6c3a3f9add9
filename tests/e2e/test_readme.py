"""The README's quick start, run as written: the emulator command in one process ("a second
terminal"), then every command of the next block, unmodified, on a real terminal (the run's
confirmation is answered as a person would)."""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..helpers import typed

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()


def quick_start() -> tuple[str, list[str]]:
    """(the emulator's command, the commands typed in the first terminal)."""
    section = README.split("## Quick start on the emulator", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2, "the quick start has an emulator block and a commands block"
    return blocks[0].strip(), [line for line in blocks[1].splitlines() if line.strip()]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the emulator exited"
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def port_of_the_readme() -> Iterator[None]:
    """The quick start names the emulator's default port; suites running at once on this
    machine (other clones) take turns for it instead of meeting each other's emulator."""
    with open(Path(tempfile.gettempdir()) / "bulk-delete-quick-start.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@pytest.mark.e2e(seconds=22)
@pytest.mark.usefixtures("port_of_the_readme")
def test_the_quick_start_runs_as_written(tmp_path: Path) -> None:
    # A folder laid out as a clone is: the venv, the samples and the shipped jobs.
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    shutil.copytree(ROOT / "sample_inputs", tmp_path / "sample_inputs")
    shutil.copytree(ROOT / "jobs", tmp_path / "jobs")
    emulator_line, commands = quick_start()
    env = dict(os.environ)
    assert commands[0].startswith("export ")
    for assignment in shlex.split(commands[0])[1:]:
        name, _, value = assignment.partition("=")
        env[name] = value
    port = int(env["LSQ_HOST"].rsplit(":", 1)[1])
    assert not listening(port), f"port {port} is taken: the quick start's emulator needs it"
    emulator = subprocess.Popen(shlex.split(emulator_line), cwd=tmp_path, env=env)
    try:
        wait_for_port(port, emulator)
        for line in commands[1:]:
            assert typed(line, tmp_path, env) in (0, 1), line  # 1: invalid rows
    finally:
        emulator.terminate()
        emulator.wait(10)
    assert (tmp_path / "try.sqlite").is_file()
    assert list((tmp_path / "try-state").glob("nightly-discover-purge-2025-03-01.sqlite"))


def test_a_folder_report_in_the_readme_is_one_the_shipped_jobs_make() -> None:
    """`report DIR` in the README names a folder that exists once the shipped jobs ran: their
    state_dir, or the quick start's --state-dir (which the quick start then reports on)."""
    import tomllib

    made = {"try-state"}
    for job in (ROOT / "jobs").glob("*.toml"):
        state = tomllib.loads(job.read_text()).get("state_dir", "state")
        made.add(str((job.parent / state).resolve().relative_to(ROOT)))
    folders = re.findall(r"bulk-delete report (\S+)/? -o", README)
    folders = [name.rstrip("/") for name in folders if not name.endswith(".sqlite")]
    assert folders, "the README shows no report of a job's folder"
    assert set(folders) <= made, f"{folders} not among the folders the jobs make: {made}"
    _, commands = quick_start()
    assert any(" report try-state " in line for line in commands)
