"""The package's layers, read from its imports: they point down only and never circle.

The walk reads every module with `ast` (type-only and function-local imports included), so a
circle hidden behind ``TYPE_CHECKING`` fails here as surely as a real one.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import subprocess
import sys
import sysconfig
import typing
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path

import click
import pytest

from bulk_delete.cli.main import cli
from bulk_delete.commands.verify_strategy import Choice
from bulk_delete.config import RateLimit
from bulk_delete.emulator.knobs import config_of, knobs
from bulk_delete.records import InvalidRow, Request, Status
from bulk_delete.send.pool import Progress
from bulk_delete.store.checkpoint import Checkpoint, Outcome
from bulk_delete.summary import RunFigures, RunResult, RunSummary, Strategy
from tests.report_fixtures import night_log

PACKAGE = Path(__file__).resolve().parent.parent / "bulk_delete"

# Lower numbers sit lower. A module may import its own layer and the ones below it, never above.
# Top-level modules not named here are the base (0). The emulator stands beside the pipeline:
# it shares only the base (wire facts, config, errors) and the CLI starts it.
LAYERS = {
    "sheet": 1,  # file → table chunks
    "plan": 2,  # table → requests
    "store": 3,  # SQLite and files
    "send": 4,  # the wire: client, answers, retry, limiter, breaker, pool
    "commands": 6,  # a run's options (spec.py), plan, run, verify, status, export, jobs
    "emulator": 6,
    "cli": 7,  # the only layer that prints and runs the event loop
    "__main__": 8,
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


@functools.cache
def _tree(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once per test process: the tests below only read it."""
    return ast.parse(path.read_text(), str(path))


def imports_of(module: str) -> set[str]:
    """The package modules `module` imports, by any route (type-only and local ones too)."""
    path = MODULES[module]
    found = _imported_names(module, path, ast.walk(_tree(path)))
    return {name for name in found if name in MODULES and name != module}


def _imported_names(module: str, path: Path, nodes: Iterable[ast.AST]) -> set[str]:
    """What these import statements name: each module, and each name taken from one."""
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


@functools.cache
def graph() -> dict[str, set[str]]:
    """Each package module and the package modules it imports (made on first use: a worker
    that runs none of these tests never parses the package)."""
    return {module: imports_of(module) for module in MODULES}


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 else 0


def _cycle() -> list[str] | None:
    """One import circle, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph()[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph()):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_the_walk_sees_the_imports_it_must() -> None:
    assert "bulk_delete.store.checkpoint" in graph()["bulk_delete.send.pool"]
    assert "bulk_delete.errors" in graph()["bulk_delete.config"]
    assert "bulk_delete.cli.main" in graph()["bulk_delete.cli"]


def test_no_module_imports_itself_back_round_a_circle() -> None:
    assert _cycle() is None


def test_a_lower_layer_never_imports_a_higher_one() -> None:
    upward = sorted(
        f"{module} → {target}"
        for module, targets in graph().items()
        for target in targets
        if layer(target) > layer(module) and target != "bulk_delete"
    )
    assert upward == []


def _classes() -> list[tuple[str, str, set[str]]]:
    """Every class of the package: (module, name, the names of its bases)."""
    return [
        (module, node.name, {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases})
        for module, path in MODULES.items()
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ClassDef)
    ]


def test_every_error_of_the_package_is_in_errors_py() -> None:
    """One error tree, drawn in one module (httpx's ``_exceptions.py``): a BulkDeleteError
    subclass anywhere else is a branch the drawing misses."""
    classes = _classes()
    errors = {"BulkDeleteError"}
    while grown := {name for _, name, bases in classes if bases & errors} - errors:
        errors |= grown
    elsewhere = sorted(
        f"{module}.{name}"
        for module, name, bases in classes
        if bases & errors and module != "bulk_delete.errors"
    )
    assert elsewhere == []
    drawn = ast.get_docstring(_tree(MODULES["bulk_delete.errors"])) or ""
    assert sorted(name for name in errors if name not in drawn) == []


def _exits(tree: ast.AST) -> list[str]:
    """The exits a module's code makes (``sys.exit``, ``os._exit``, ``exit``, ``raise
    SystemExit``), leaving out a script's own ``if __name__ == "__main__":`` entry."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            node.body = []
    found = []
    for node in ast.walk(tree):
        called = ast.unparse(node.func) if isinstance(node, ast.Call) else ""
        raised = ast.unparse(node.exc) if isinstance(node, ast.Raise) and node.exc else ""
        if called in ("sys.exit", "os._exit", "exit", "quit") or raised.startswith("SystemExit"):
            found.append(called or raised)
    return found


def test_only_the_cli_main_exits() -> None:
    """One exit (click's ``main``): commands return what happened, the CLI maps it and any
    error to an exit code in cli/main.py, and nothing else ends the process, but for the
    second Ctrl-C, which quits at once (README: Stopping) whatever the process is doing."""
    exits = {
        module: found
        for module, path in MODULES.items()
        if module != "bulk_delete.cli.main" and (found := _exits(_tree(path)))
    }
    assert exits == {"bulk_delete.cli.signals": ["os._exit"]}


# What reads the machine's clock or makes its own chance: the Clock and the RNG come in instead.
_CLOCKS = (
    "time.time",
    "time.time_ns",
    "time.monotonic",
    "time.perf_counter",
    "datetime.now",
    "datetime.utcnow",
    "datetime.today",
    "date.today",
)
_CHANCES = (
    "random.Random",
    "Random",
    "random.random",
    "random.uniform",
    "random.choice",
    "random.randint",
    "random.shuffle",
    "random.sample",
)


def _own_time_or_chance(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if called.endswith((*_CLOCKS, "utcnow")) or called in _CHANCES:
                found.append(called + "()")
        elif isinstance(node, ast.Attribute) and ast.unparse(node) in (
            "time.time",
            "time.monotonic",
        ):
            found.append(ast.unparse(node))  # a default that reads the clock later
    return found


def test_time_and_chance_come_from_outside() -> None:
    """send/, store/ and commands/ read time only from the Clock they are given (monotonic
    and wall) and draw chance only from the RNG they are given: a test's ManualClock then
    takes the production path, the machine's ledger included."""
    found = {
        module: calls
        for module, path in MODULES.items()
        if module.startswith(("bulk_delete.send.", "bulk_delete.store.", "bulk_delete.commands."))
        and (calls := _own_time_or_chance(_tree(path)))
    }
    assert found == {}


def test_no_two_modules_share_a_name() -> None:
    """One name, one concept (httpx's ``_client.py``, ``_config.py``): a concept that crosses
    layers says which part each module is (``store/backup_file.py``, ``send/backup_fetch.py``),
    never the same stem twice."""
    stems: dict[str, list[str]] = {}
    for module, path in MODULES.items():
        if path.stem != "__init__":
            stems.setdefault(path.stem, []).append(module)
    assert {stem: found for stem, found in stems.items() if len(found) > 1} == {}


# errors.py draws the whole error tree in its docstring (httpx's ``_exceptions.py``), which
# test_every_error_of_the_package_is_in_errors_py holds: a reference a caller reads, not prose.
LONG_DOCSTRING_ALLOWED = {"bulk_delete.errors"}


def test_module_docstrings_are_short() -> None:
    """A module docstring says what the module is for and how to call it, in a few lines; why
    it is built so, with the figures of a day, is in docs/design/."""
    long = {
        module: lines
        for module, path in MODULES.items()
        if module not in LONG_DOCSTRING_ALLOWED
        and (lines := len((ast.get_docstring(_tree(path)) or "").splitlines())) > 10
    }
    assert long == {}


def test_no_two_modules_define_a_class_of_one_name() -> None:
    """A class name says one thing: two public classes of one name (a Selection of what a
    request deletes beside a Selection of what a restore posts) read as one concept."""
    where: dict[str, list[str]] = {}
    for module, path in MODULES.items():
        for node in _tree(path).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                where.setdefault(node.name, []).append(module)
    assert {name: found for name, found in where.items() if len(found) > 1} == {}


COMMANDS = ("plan", "run", "job", "verify", "restore", "status", "export", "report", "preflight")
MAX_COMMAND_LINES = 400


def test_the_commands_folder_shows_the_commands() -> None:
    """Each command the core runs is a module of commands/ named after it, defining it; no
    catch-all `pipeline` module comes back, and no module there grows past a reading."""
    defined = {
        name: {
            node.name
            for node in _tree(MODULES[f"bulk_delete.commands.{name}"]).body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        for name in COMMANDS
        if f"bulk_delete.commands.{name}" in MODULES
    }
    assert {name for name in defined if name in defined[name]} == set(COMMANDS)
    assert [name for name in MODULES if name.rsplit(".", 1)[-1] == "pipeline"] == []
    long = {
        name: lines
        for name, path in MODULES.items()
        if name.startswith("bulk_delete.commands.")
        and name != "bulk_delete.commands.spec"  # a table of every option, one field each
        and (lines := len(path.read_text().splitlines())) > MAX_COMMAND_LINES
    }
    assert long == {}


MAX_CLI_LINES = 400


def test_no_cli_module_grows_past_a_reading() -> None:
    """The CLI is the edge: a module of cli/ past a reading is doing a stage's work besides
    (as the page's module once filled, drew and assembled the page in one) and wants splitting."""
    sizes = {
        name: len(path.read_text().splitlines())
        for name, path in MODULES.items()
        if name.startswith("bulk_delete.cli.")
    }
    assert {"bulk_delete.cli.main", "bulk_delete.cli.charts.svg"} <= set(sizes)  # subfolders too
    assert {name: size for name, size in sizes.items() if size > MAX_CLI_LINES} == {}


@pytest.mark.e2e
@pytest.mark.parametrize("package", ["bulk_delete.send", "bulk_delete.store"])
def test_sending_and_storing_load_no_pandas_or_numpy(package: str) -> None:
    modules = sorted(name for name in MODULES if name.startswith(package + "."))
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'numpy'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


HEAVY = ("pandas", "numpy")
# What a command may load besides the standard library and bulk_delete, as click's
# tests/test_imports.py keeps a list for `import click`: planning (pandas, numpy, calamine)
# is for the commands that read a sheet, never for those that read a checkpoint.
ALLOWED = {
    "help": {"click"},
    "status": {"click"},
    "export-csv": {"click"},
    "export-xlsx": {"click", "xlsxwriter"},
    "report": {"click", "jinja2", "markupsafe"},
}
_LOADED = """
import json, sys
from bulk_delete.cli.main import cli
try:
    cli(sys.argv[2:], prog_name="bulk-delete")
except SystemExit as stop:
    code = stop.code
else:
    code = 0
names = {  # (a module the LazyLoader holds and nothing has used is not loaded: the client's)
    name.split(".")[0]
    for name, module in sys.modules.items()
    if type(module).__name__ != "_LazyModule"
}
loaded = sorted(names - sys.stdlib_module_names)
with open(sys.argv[1], "w") as out:
    json.dump({"exit": code, "loaded": loaded}, out)
"""


def _checkpoint(path: Path) -> Path:
    """A small real checkpoint: a plan of three requests and an invalid row, two queued and
    one failed, and a call log with refusals and a learned limit (so `report` draws)."""
    lead = "6a3e5a2e-4b0f-4bde-9f0e-0000000000{:02d}"
    requests = [
        Request(lead.format(n), ("201",), "2026-01-01 00:00:00", "", "", (n + 2,)) for n in range(3)
    ]
    invalid = [InvalidRow(row=9, reasons=(("bad lead", "ProspectId 'x' is not a GUID"),))]
    with Checkpoint.open(path) as checkpoint:
        checkpoint.store_plan(
            requests, invalid, source="leads.csv", fingerprint="f", options={"tz": "UTC"}, extra={}
        )
        checkpoint.mark_queued_up_to(2)
        checkpoint.start_run(host="https://api.example", rate="25/5s")
    night_log(path, 120)
    return path


def _loaded(args: list[str], tmp_path: Path) -> set[str]:
    """The top-level modules outside the standard library that running ``bulk-delete ARGS``
    loads, in a fresh interpreter; the command must succeed."""
    out = tmp_path / "loaded.json"
    subprocess.run([sys.executable, "-c", _LOADED, str(out), *args], check=True, cwd=tmp_path)
    found = json.loads(out.read_text())
    assert found["exit"] in (0, 1, None), found
    return {name for name in found["loaded"] if not name.startswith("_")} - {"bulk_delete"}


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("help", ["--help"]),
        *[("help", [command, "--help"]) for command in sorted(cli.commands)],
        ("status", ["status", "ck.sqlite"]),
        ("export-csv", ["export", "ck.sqlite", "-o", "out.csv"]),
        ("export-csv", ["export", "ck.sqlite", "-o", "-"]),
        ("export-xlsx", ["export", "ck.sqlite", "-o", "out.xlsx"]),
        ("report", ["report", "ck.sqlite", "-o", "out.html"]),
    ],
)
def test_reading_a_checkpoint_starts_without_pandas(
    name: str, args: list[str], tmp_path: Path
) -> None:
    """`--help`, every `COMMAND --help`, status, export (CSV and .xlsx) and report load what
    they use and nothing of planning: neither pandas nor numpy, in a fresh interpreter."""
    _checkpoint(tmp_path / "ck.sqlite")
    loaded = _loaded(args, tmp_path)
    assert not loaded & set(HEAVY)
    assert loaded <= ALLOWED[name]


def test_the_summary_schema_lists_the_run_results_of_the_enum() -> None:
    schema = json.loads((PACKAGE / "summary.schema.json").read_text())
    result = schema["properties"]["this_run"]["properties"]["result"]
    assert result["enum"] == [str(value) for value in RunResult]


def test_states_are_enums_wherever_they_are_kept() -> None:
    """A status, a run's result and a verify strategy are each one StrEnum, not loose text."""
    hints = {
        "Outcome.status": typing.get_type_hints(Outcome)["status"],
        "Choice.strategy": typing.get_type_hints(Choice)["strategy"],
    }
    assert hints == {"Outcome.status": Status, "Choice.strategy": Strategy}
    assert {str(s) for s in Status} == {"pending", "queued", "failed"}
    assert issubclass(RunResult, StrEnum)


def test_a_run_has_one_type_for_its_figures() -> None:
    """The pool counts into a RunFigures, the checkpoint reads one back, the summary shows it;
    its JSON is the documented ``this_run`` (the 429 count keeps its one name)."""
    assert typing.get_type_hints(Progress)["figures"] is RunFigures
    assert typing.get_type_hints(Checkpoint.last_run)["return"] == RunFigures | None
    assert typing.get_type_hints(Checkpoint.finish_run)["stats"] is RunFigures
    assert typing.get_type_hints(RunSummary)["this_run"] is RunFigures
    schema = json.loads((PACKAGE / "summary.schema.json").read_text())
    assert list(RunFigures().to_json()) == list(schema["properties"]["this_run"]["properties"])
    live = {field.name for field in dataclasses.fields(Progress)}
    assert not live & {field.name for field in dataclasses.fields(RunFigures)}


def _asks_the_policy(function: ast.AST) -> bool:
    """Whether a function decides retries: it asks a retry policy or feeds a breaker."""
    return any(
        isinstance(node, ast.Attribute)
        and (node.attr == "decide" or (node.attr == "record" and "breaker" in ast.unparse(node)))
        for node in ast.walk(function)
    )


def test_one_retry_loop_serves_the_pool_and_single_calls() -> None:
    """Only `until_settled` asks the retry policy what to do: the pool's deletes, the
    preflight, --check-codes, verify's calls and the listing's pages all go through it."""
    deciders = sorted(
        f"{module}.{node.name}"
        for module, path in MODULES.items()
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _asks_the_policy(node)
    )
    assert deciders == ["bulk_delete.send.pool.until_settled"]


def _starts_tasks(node: ast.AST) -> bool:
    """A group of tasks started by hand: asyncio.TaskGroup, create_task, ensure_future,
    gather (each is a worker pool of its own, with its own way of stopping)."""
    return isinstance(node, ast.Attribute) and node.attr in {
        "TaskGroup",
        "create_task",
        "ensure_future",
        "gather",
    }


def test_one_worker_pool_serves_deletes_verify_and_the_listing() -> None:
    """Only send/pool.py starts tasks in commands/ and send/: verify's checks, the listing's
    codes and the deletes are all work items of `Pool.each`, under one stop protocol."""
    starters = sorted(
        {
            module
            for module, path in MODULES.items()
            if module.startswith(("bulk_delete.commands.", "bulk_delete.send."))
            for node in ast.walk(_tree(path))
            if _starts_tasks(node)
        }
    )
    assert starters == ["bulk_delete.send.pool"]


def test_the_emulator_options_are_its_config_fields() -> None:
    """Each knob of EmulatorConfig is an option of `bulk-delete emulator`, with its help, and
    the command declares nothing else but where it listens."""
    command = cli.commands["emulator"]
    options = {param.name: param for param in command.params}
    assert set(options) - {"port", "port_file"} == {name for name, _, _ in knobs()}
    for name, _, declared in knobs():
        assert isinstance(options[name], click.Option)
        assert declared.help in (options[name].help or "")
    flags = {name: param.opts[0] for name, param in options.items()}
    assert flags["log_path"] == "--log"
    assert flags["huge_body_rate"] == "--huge-body-rate"
    given = {"rate": "5/1s", "system_codes": "1-3", "seed": 7, "stated_rate": ""}
    config = config_of(given)
    assert config.rate == RateLimit(calls=5, period=1.0)
    assert config.system_codes == {"1", "2", "3"}
    assert config.seed == 7
    assert config.stated_rate is None  # not given


def test_a_summary_before_the_start_loads_no_planning() -> None:
    """The --summary-json of a restore's dry run, or of any command stopped before its first
    call, was made in commands/run.py, which loads pandas: a restore reads no sheet."""
    code = (
        "import sys\n"
        "import bulk_delete.cli.restore_cmd, bulk_delete.cli.summary_json, bulk_delete.cli.notify\n"
        "from bulk_delete.clock import SystemClock\n"
        "from bulk_delete.commands.common import summary_before_start\n"
        "summary_before_start(None, SystemClock(), 'stopped')\n"
        "print(sorted(m for m in ('pandas', 'numpy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


_ENVIRONMENT_READS = """
import importlib, os, pkgutil, sys
package = os.path.dirname(importlib.util.find_spec("bulk_delete").origin)
reads = []
def _ours():
    # the nearest module of ours up the stack, unless another module's body (a package we
    # import, reading the environment as it is imported) comes first
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(package):
            return f"{os.path.relpath(name, package)}:{frame.f_lineno}"
        if frame.f_code.co_name == "<module>":
            return None
        frame = frame.f_back
    return None
def recording(method):
    def read(self, *args):
        key = args[0] if args and isinstance(args[0], str) else ""
        # the locale, read by gettext for click's texts: a start whose locale differs from
        # the zygote's is a fresh one (tests/forked.py)
        where = None if key.startswith(("LANG", "LC_")) else _ours()
        if where:
            reads.append(where)
        return method(self, *args)
    return read
for name in ("__getitem__", "__contains__", "__iter__", "get", "copy", "keys", "items"):
    if hasattr(os._Environ, name):
        setattr(os._Environ, name, recording(getattr(os._Environ, name)))
import bulk_delete
for module in pkgutil.walk_packages(bulk_delete.__path__, "bulk_delete."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
print(sorted(set(reads)))
"""


def test_no_module_reads_the_environment_when_imported() -> None:
    """The environment is read when a command runs, never when a module is imported: the
    keys and the host come from the process that runs, and tests/forked.py starts processes
    from an interpreter that imported the package before their environment was set."""
    out = subprocess.run(
        [sys.executable, "-c", _ENVIRONMENT_READS], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def _attribute_chain(node: ast.Attribute) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; None when it starts on anything but a name."""
    parts: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    return [current.id, *reversed(parts)] if isinstance(current, ast.Name) else None


def _names_bound(module: str, path: Path, tree: ast.AST) -> dict[str, str]:
    """Each name an import binds anywhere in the module -> the module (or attribute) it names."""
    named: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                named[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path, node)
            for alias in node.names:
                named[alias.asname or alias.name] = f"{target}.{alias.name}"
    return named


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_TYPE_CHECKING = ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _runs_in(scope: ast.AST, lazy_annotations: bool) -> Iterator[ast.AST]:
    """The nodes that run in ``scope`` itself: not what ``if TYPE_CHECKING:`` guards, nor
    annotations left unevaluated (``from __future__ import annotations``); a nested
    function is yielded, not entered (it runs later, in a scope of its own)."""
    for child in ast.iter_child_nodes(scope):
        if isinstance(child, ast.If) and ast.unparse(child.test) in _TYPE_CHECKING:
            for other in child.orelse:
                yield other
                yield from _runs_in(other, lazy_annotations)
            continue
        if lazy_annotations and _is_annotation(scope, child):
            continue
        yield child
        if not isinstance(child, _SCOPES):
            yield from _runs_in(child, lazy_annotations)


def _is_annotation(parent: ast.AST, child: ast.AST) -> bool:
    return (isinstance(parent, ast.arg | ast.AnnAssign) and child is parent.annotation) or (
        isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef) and child is parent.returns
    )


def _imports_among(module: str, path: Path, nodes: list[ast.AST]) -> set[str]:
    """The modules these nodes import, their packages included."""
    imported = _imported_names(module, path, nodes)
    return imported | {name.rsplit(".", n)[0] for name in imported for n in range(name.count("."))}


def submodules_reached(module: str, source: str, path: Path) -> set[str]:
    """The dotted names ``module`` reaches through an imported module's attributes
    (``urllib.request`` in ``urllib.request.urlopen``, after ``import urllib``) where no
    import that has run imports them: an import counts in its own function and those inside
    it (at the top of the module: everywhere), and not at all under ``if TYPE_CHECKING:``."""
    tree = ast.parse(source, str(path))
    named = _names_bound(module, path, tree)
    lazy = "from __future__ import annotations" in source
    reached: set[str] = set()

    def visit(scope: ast.AST, imported: set[str]) -> None:
        nodes = list(_runs_in(scope, lazy))
        imported = imported | _imports_among(module, path, nodes)
        for node in nodes:
            if isinstance(node, _SCOPES):
                visit(node, imported)
            chain = _attribute_chain(node) if isinstance(node, ast.Attribute) else None
            if chain and chain[0] in named:
                name = named[chain[0]]
                for part in chain[1:]:
                    name = f"{name}.{part}"
                    if name not in imported:
                        reached.add(name)

    visit(tree, set())
    return reached


_LOADED_WITH_PARENT = """
import json, os, sys
sys.path[:0] = json.loads(sys.argv[2])
from importlib.machinery import PathFinder

def is_submodule(name):  # found on disk, importing nothing
    top, *rest = name.split(".")
    spec = PathFinder.find_spec(top)
    for depth in range(len(rest)):
        if spec is None or not spec.submodule_search_locations:
            return False
        within = spec.submodule_search_locations
        spec = PathFinder.find_spec(".".join([top, *rest[: depth + 1]]), within)
    return bool(rest) and spec is not None

found = []
for name in json.loads(sys.argv[1]):
    if not is_submodule(name):
        continue
    child = os.fork()  # each in a child of this bare interpreter: what one name's package
    if child == 0:     # imports must not load another's
        parent, _, attribute = name.rpartition(".")
        __import__(parent)
        os._exit(0 if hasattr(sys.modules[parent], attribute) else 1)
    if os.waitpid(child, 0)[1] != 0:
        found.append(name)
print(json.dumps(found))
"""


_LIBS = ("purelib", "platlib")


def unimported_submodules(names: set[str]) -> set[str]:
    """Of ``names``, the modules of their own that importing their package does not load:
    reached without an import, they work only while something else has imported them.
    (Asked of a fresh interpreter: what this one has imported says nothing. Without site:
    the editable install's finder, run from a .pth file, imports importlib.util and
    urllib.parse into every interpreter of the venv, but not into an installed copy's.)"""
    paths = [str(PACKAGE.parent), *dict.fromkeys(sysconfig.get_paths()[k] for k in _LIBS)]
    out = subprocess.run(
        [sys.executable, "-S", "-c", _LOADED_WITH_PARENT, json.dumps(sorted(names)),
         json.dumps(paths)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return set(json.loads(out.stdout))


def test_every_module_imports_the_submodules_it_reaches() -> None:
    """`import urllib` then `urllib.request.urlopen(...)` works only where another module has
    imported urllib.request first: in a long run, not in a short one. Each module of ours
    imports what it reaches (tests/forked.py's children share the zygote's imports, so a
    forked start could not show this)."""
    reached: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        for name in submodules_reached(module, path.read_text(), path):
            reached.setdefault(name, set()).add(module)
    missing = unimported_submodules(set(reached))
    assert {name: sorted(reached[name]) for name in missing} == {}


def test_the_submodule_check_sees_an_unimported_one(tmp_path: Path) -> None:
    source = (
        "import urllib\nimport os\nimport email.utils as mail\nimport importlib.util\n"
        "urllib.request.urlopen\nos.path.join\nmail.parsedate\nimportlib.util.find_spec\n"
        "email.message\n"
    )
    names = submodules_reached("bulk_delete.x", source, tmp_path / "x.py")
    assert unimported_submodules(names) == {"urllib.request"}


def test_the_submodule_check_counts_only_the_imports_that_have_run(tmp_path: Path) -> None:
    """An import under ``if TYPE_CHECKING:`` never runs, one in another function may not have
    run yet, and the venv's own start-up imports are not an installed copy's: each passed a
    forked start (or the venv) and failed a fresh one (or an install)."""
    source = (
        "from __future__ import annotations\nimport importlib\nimport urllib.parse\n"
        "import xml.dom\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    import urllib.request\n    import http.cookiejar\n"
        "def read() -> http.cookiejar.CookieJar:\n    urllib.request.pathname2url('x')\n"
        "def parse():\n    import xml.etree.ElementTree\n    xml.etree.ElementTree.XML\n"
        "def later():\n    xml.etree.ElementTree.XML\n    importlib.util.find_spec\n"
    )
    names = submodules_reached("bulk_delete.x", source, tmp_path / "x.py")
    unimported = unimported_submodules(names)
    assert unimported == {"urllib.request", "xml.etree", "xml.etree.ElementTree", "importlib.util"}
