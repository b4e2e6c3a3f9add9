"""`make demo`: the emulator on a free port, the job on sample_inputs/, the summary.

Everything runs for real — the emulator as its own process on 127.0.0.1, the job through
its command line — with the emulator's demo keys. The demo exits 0 even though the samples
hold invalid rows on purpose: it is there to show them.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_inputs"
OUTPUT = ROOT / "demo-output"
# The console script `make install` puts beside this Python, as a user would type it.
_SCRIPT = Path(sys.executable).parent / "bulk-delete"
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "bulk_delete"]


def start_emulator(port_file: Path, *extra: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [*COMMAND, "emulator", "--port", "0", "--port-file", str(port_file), *extra]
    )
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text().strip()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the emulator did not start")
        time.sleep(0.05)
    return process


def shown(command: list[str]) -> str:
    """A command as the demo runs it (from the repository's folder), to copy into a shell."""
    program = Path(command[0])
    if program.is_relative_to(ROOT):
        return shlex.join([str(program.relative_to(ROOT)), *command[1:]])
    return shlex.join(command)


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def main() -> int:
    if OUTPUT.exists():
        shutil.rmtree(OUTPUT)
    OUTPUT.mkdir()
    with tempfile.TemporaryDirectory() as scratch:
        port_file = Path(scratch) / "port"
        step(
            "Starting the LeadSquared emulator (25 calls / 5 s, ~150 ms latency, 3 % transient 5xx)"
        )
        emulator = start_emulator(
            port_file,
            "--latency",
            "0.15",
            "--jitter",
            "0.05",
            "--transient-rate",
            "0.03",
            "--seed",
            "7",
            "--log",
            str(OUTPUT / "emulator-deletes.jsonl"),
        )
        host = f"http://127.0.0.1:{port_file.read_text().strip()}"
        env = {
            **os.environ,
            "LSQ_HOST": host,
            "LSQ_ACCESS_KEY": DEMO_ACCESS_KEY,
            "LSQ_SECRET_KEY": DEMO_SECRET_KEY,
        }
        try:
            for sample, extra in (("leads.csv", ["--tz", "Asia/Kolkata"]), ("leads.xlsx", [])):
                name = sample.replace(".", "-")
                checkpoint = OUTPUT / f"{name}.sqlite"
                # The samples hold an undated row on purpose (the plan shows it apart), so the
                # demo says --open-window, as a user sending such a sheet must.
                command = [
                    *COMMAND,
                    "run",
                    str((SAMPLES / sample).relative_to(ROOT)),
                    "--checkpoint",
                    str(checkpoint.relative_to(ROOT)),
                    "--yes",
                    "--open-window",
                    "--quiet",
                    *extra,
                ]
                step(shown(command))
                done = subprocess.run(command, env=env, cwd=ROOT, check=False)
                if done.returncode not in (0, 1):  # 1: finished, with the samples' bad rows
                    print(f"demo: the run exited {done.returncode}", file=sys.stderr)
                    return done.returncode
                export = [*COMMAND, "export", str(checkpoint.relative_to(ROOT))]
                export += ["-o", str((OUTPUT / f"{name}-outcomes.csv").relative_to(ROOT))]
                step(shown(export))
                subprocess.run(export, env=env, cwd=ROOT, check=True)
        finally:
            emulator.terminate()
            emulator.wait(timeout=10)
    step("Done")
    print(f"Checkpoints and exports are in {OUTPUT.relative_to(ROOT)}/ — try:")
    print(f"  .venv/bin/bulk-delete status {OUTPUT.relative_to(ROOT)}/leads-csv.sqlite")
    print("Every 'queued' means LeadSquared accepted the delete and will carry it out on its side.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as error:  # the emulator did not start
        sys.exit(f"demo: {error}")
