"""The README's recovery recipe (section 14), run as written on a terminal after a purge of the
sample sheet with --backup: verify, the dry run, one lead, then the rest; every activity back
once, the sample's lead not twice."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from bulk_delete.emulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY
from bulk_delete.store.backup_file import read_backup

from ..helpers import typed

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
BIN = ROOT / ".venv" / "bin"

pytestmark = pytest.mark.e2e


def recipe() -> list[str]:
    section = README.split("### 14. The way back: `restore`", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"\*\*A recovery recipe\*\*.*?```sh\n(.*?)```", section, re.DOTALL)
    assert block, "section 14 has its recipe"
    return [line for line in block.group(1).splitlines() if line.strip()]


def _stats(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url + "/__emulator/stats", timeout=10) as answer:  # noqa: S310
        return dict(json.loads(answer.read()))


@pytest.mark.e2e(seconds=8)
def test_the_recovery_recipe_runs_as_written(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    # The purge before the recipe is this test's own, not the README's: on an account of
    # 100 calls a second it takes 2 s instead of the 17 s its 86 calls take at 25/5s. The
    # recipe's commands run as written, at their own default pace.
    knobs = ["--port", "0", "--port-file", str(port_file), "--webhook-delay", "0.1"]
    knobs += ["--rate", "100/1s"]
    emulator = subprocess.Popen([str(BIN / "bulk-delete"), "emulator", *knobs], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert time.monotonic() < deadline
            assert emulator.poll() is None
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        env = {
            **os.environ,
            "PATH": f"{BIN}:{os.environ['PATH']}",
            "LSQ_HOST": url,
            "LSQ_ACCESS_KEY": DEMO_ACCESS_KEY,
            "LSQ_SECRET_KEY": DEMO_SECRET_KEY,
        }
        purge = [str(ROOT / "sample_inputs" / "leads.csv"), "--tz", "Asia/Kolkata"]
        purge += ["--open-window", "--checkpoint", "purge-q1.sqlite", "--yes", "--rate", "100/1s"]
        # Its calls are in another machine ledger, as a purge's are once its windows are past
        # (the recipe's verify would otherwise wait 5 s for 86 starts at 25/5s to age out).
        earlier = {**env, "XDG_STATE_HOME": str(tmp_path / "purge-machine-state")}
        done = subprocess.run(
            [str(BIN / "bulk-delete"), "run", *purge, "--backup", "q1-backup.jsonl.gz"],
            cwd=tmp_path, env=earlier, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr  # the sample's invalid rows, on purpose
        time.sleep(0.5)  # the deletes are carried out
        posted = []  # after each command of the recipe
        for line in recipe():
            assert typed(line, tmp_path, env) == 0, line
            posted.append(_stats(url)["activities_posted"])
        saved = list(read_backup(tmp_path / "q1-backup.jsonl.gz"))
        stats = _stats(url)
    finally:
        emulator.terminate()
        emulator.wait(10)
    assert len(saved) > 1
    sample = shlex.split(recipe()[2])[shlex.split(recipe()[2]).index("--lead") + 1]
    of_sample = sum(row["ProspectId"] == sample for row in saved)
    assert 0 < of_sample < len(saved)
    # verify and the dry run post nothing, then the sample's lead alone, then the rest
    assert posted == [0, 0, of_sample, len(saved)]
    assert stats["posted_twice"] == 0  # the sample's lead, once
