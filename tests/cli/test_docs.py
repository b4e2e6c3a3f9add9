"""The docs and the CLI must not drift apart (the idea of sqlite-utils' test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bulk_delete.cli.main import cli
from bulk_delete.commands.spec import job_keys
from bulk_delete.errors import EXIT_CODES_HELP
from bulk_delete.summary import json_fields

README = (Path(__file__).parents[2] / "README.md").read_text()
COMMANDS = sorted(cli.commands)


def all_options() -> set[str]:
    names: set[str] = set()
    for command in cli.commands.values():
        for param in command.params:
            if isinstance(param, click.Option):
                names.update(param.opts, param.secondary_opts)  # --preflight/--no-preflight
    return names


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_and_option_has_help(name: str) -> None:
    command = cli.commands[name]
    assert command.help, f"{name} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts[0]} has no help text"
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    first_words = " ".join(command.help.split()[:6])
    assert first_words in " ".join(result.output.split())


@pytest.mark.parametrize("name", COMMANDS)
def test_readme_shows_every_command(name: str) -> None:
    assert f"bulk-delete {name}" in README


def test_every_option_in_the_readme_exists() -> None:
    mentioned = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", README))
    assert mentioned, "the README names no options"
    unknown = mentioned - all_options() - {"--help", "--version"}
    assert not unknown, f"README mentions options the CLI does not have: {sorted(unknown)}"


def test_readme_exit_codes_match_the_code() -> None:
    in_code = set(re.findall(r"^\s+(\d+)\s", EXIT_CODES_HELP, re.MULTILINE))
    section = README.split("### 12. Exit codes", 1)[1].split("###", 1)[0]
    in_readme = set(re.findall(r"^\| (\d+) \|", section, re.MULTILINE))
    assert in_code == in_readme == {"0", "1", "2", "3", "70", "75", "130"}


def test_readme_documents_every_summary_json_field() -> None:
    after = README.split("**Summary JSON fields.**", 1)[1].splitlines()
    first = next(i for i, line in enumerate(after) if line.startswith("|"))
    table = []
    for line in after[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    documented = set()
    for line in table[2:]:
        documented.update(re.findall(r"`([a-z0-9_.\[\]]+)`", line.split("|")[1]))
    fields = set(json_fields())
    leaves = {
        name
        for name in fields
        if not any(other.startswith((name + ".", name + "[].")) for other in fields)
    }
    assert documented == leaves


def test_readme_lists_every_job_key_of_the_spec() -> None:
    bullet = README.split("Every option of `run` that makes sense in a file", 1)[1].split("\n- ")[0]
    listed = set(re.findall(r"`([a-z_]+)`", bullet.split("An error names")[0]))
    assert listed == set(job_keys()) | {"plan"}
