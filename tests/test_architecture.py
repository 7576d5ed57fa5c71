"""The import rules of docs/architecture.md, checked on the source's syntax trees (nothing heavy is imported).

- A flow imports tasks, Prefect, the standard library, other flows, and from driftline only the foundation modules
  a flow needs (spec, errors, settings, events, alerts) or result types; never a private name.
- Nothing under driftline/ but the CLI imports the Prefect layer (flows, tasks, deployments), deferred imports too;
  tasks never import flows or deployments.
- The areas (driftline's subpackages, its foundation, tasks, flows, deployments) import each other one way: no loop.
  The compatibility shims are no area, and nothing of the project imports them.

Each rule is also run on a small synthetic tree with a file that breaks it, so a rule that can never fail is caught.
"""

from __future__ import annotations

import ast
import importlib
import itertools
import re
import sys
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOTS = ("driftline", "tasks", "flows", "deployments")
PREFECT_LAYER = ("flows", "tasks", "deployments")

# What a flow may import from driftline besides result types: the foundation a flow needs to name a model
# (spec), branch on failures (errors), read its configuration (settings), and publish (events, alerts).
FLOW_MODULES = frozenset(
    {"driftline.spec", "driftline.errors", "driftline.settings", "driftline.oncall.events", "driftline.oncall.alerts"}
)
# driftline's own subpackages, each one node of the import graph; the rest of driftline is its foundation.
SUBPACKAGES = ("loop", "monitoring", "serving", "oncall", "registry", "runtime", "cli")
CORE = "driftline core"
CORE_MODULES = frozenset({"driftline", "driftline.errors", "driftline.settings", "driftline.spec", "driftline.libs"})
CORE_PACKAGES = ("driftline.examples",)
# Compatibility shims: the foundation re-exports the loop and the service at the paths that models saved and Bentos
# built before the package had folders name (pickles of driftline.estimators and driftline.modeling.as_text;
# driftline.service:ModelService). They import upwards on purpose and nothing imports them, so they are not nodes.
SHIMS = frozenset({"driftline.estimators", "driftline.modeling", "driftline.service"})


@dataclass(frozen=True)
class Import:
    """One imported module or name, where it is imported, and whether it only serves type checking."""

    file: str  # relative to the scanned root, with forward slashes
    line: int
    importer: str  # the importing module, dotted
    module: str  # the imported module, dotted (a submodule when ``from pkg import submodule``)
    name: str | None  # the imported name when it is not a module (``from module import name``)
    type_checking: bool

    @property
    def target(self) -> str:
        return f"{self.module}.{self.name}" if self.name else self.module

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    """Name the module a source file defines (``driftline/loop/__init__.py`` is ``driftline.loop``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path, roots: Iterable[str] = ROOTS) -> list[Path]:
    """List the Python files of the scanned packages, in a stable order."""
    return sorted(path for top in roots for path in (root / top).rglob("*.py") if "__pycache__" not in path.parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_checking: bool = False) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Yield every import statement in the tree (inside functions too), flagged when under ``if TYPE_CHECKING:``."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, type_checking
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.body:
            yield from _walk(child, True)
        for child in node.orelse:
            yield from _walk(child, type_checking)
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk(child, type_checking)


def scan(root: Path, roots: Iterable[str] = ROOTS) -> list[Import]:
    """Read every import of the packages under ``root``: absolute targets, submodules told apart from names."""
    files = source_files(root, roots)
    modules = {module_name(path, root) for path in files}
    found: list[Import] = []
    for path in files:
        importer = module_name(path, root)
        package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
        relative = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(), filename=relative)
        for node, type_checking in _walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(relative, node.lineno, importer, alias.name, None, type_checking))
                continue
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:
                    found.append(Import(relative, node.lineno, importer, submodule, None, type_checking))
                else:
                    found.append(Import(relative, node.lineno, importer, base, alias.name, type_checking))
    return found


def _top(module: str) -> str:
    return module.partition(".")[0]


def _private(item: Import) -> bool:
    parts = [*item.module.split("."), *([item.name] if item.name else [])]
    return any(part.startswith("_") for part in parts if part != "__future__")


def import_type_check(module: str, name: str) -> bool:
    """Tell whether ``module.name`` is a type: a class, or an alias such as ``Outcome = Literal[...]``.

    Imports the module, which is cheap: driftline imports nothing heavy at import time.
    """
    value = getattr(importlib.import_module(module), name, None)
    return isinstance(value, type) or typing.get_origin(value) is not None


def flow_violations(imports: Iterable[Import], is_class: Callable[[str, str], bool]) -> list[str]:
    """Imports of flows/ that reach into the logic layer, or name a private name."""
    rule = (
        "flows import tasks.*, prefect*, the standard library and other flows; from driftline only "
        f"{', '.join(sorted(FLOW_MODULES))} or result types (classes, type aliases); never a private name"
    )
    problems = []
    for item in imports:
        if _top(item.importer) != "flows":
            continue
        top = _top(item.module)
        if _private(item):
            why = f"{item.target} is private"
        elif top in sys.stdlib_module_names or top.startswith("prefect") or top in ("tasks", "flows"):
            continue
        elif top != "driftline":
            why = f"{top} is neither a task nor driftline (a flow calls tasks; the logic lives in the package)"
        elif item.module in FLOW_MODULES:
            continue
        elif item.name is None:
            why = f"{item.module} is a module of the logic layer"
        elif is_class(item.module, item.name):
            continue
        else:
            why = f"{item.name} is not a type (logic belongs in a task)"
        problems.append(f"{item.where}: imports {item.target}: {why}. Rule: {rule}")
    return problems


def layer_violations(imports: Iterable[Import]) -> list[str]:
    """Imports of the Prefect layer from below it: driftline/ (but its CLI) and tasks/."""
    problems = []
    for item in imports:
        top, target_top = _top(item.importer), _top(item.module)
        if top == "driftline" and area(item.importer) != "driftline.cli" and target_top in PREFECT_LAYER:
            problems.append(
                f"{item.where}: imports {item.target}. Rule: nothing under driftline/ but driftline/cli imports "
                "flows, tasks or deployments (not even inside a function); move the code to the CLI or into tasks/"
            )
        elif top == "tasks" and target_top in ("flows", "deployments"):
            problems.append(
                f"{item.where}: imports {item.target}. Rule: tasks never import flows or deployments "
                "(flows compose tasks, deployments run flows)"
            )
    return problems


def shim_importers(imports: Iterable[Import]) -> list[str]:
    """Imports of the compatibility shims: code names the real module, so the graph shows the real dependency."""
    return [
        f"{item.where}: imports {item.target}. Rule: {item.module} is a compatibility shim for saved models and old "
        "Bentos; import the module it re-exports"
        for item in imports
        if item.module in SHIMS and item.importer not in SHIMS
    ]


def area(module: str) -> str | None:
    """The node of the import graph a module belongs to; None for shims and modules outside the project."""
    top = _top(module)
    if top in PREFECT_LAYER:
        return top
    if top != "driftline" or module in SHIMS:
        return None
    second = module.split(".")[1] if "." in module else ""
    if second in SUBPACKAGES:
        return f"driftline.{second}"
    if module in CORE_MODULES or any(module == p or module.startswith(f"{p}.") for p in CORE_PACKAGES):
        return CORE
    return "unknown"


def unplaced_modules(modules: Iterable[str]) -> list[str]:
    """driftline modules that belong to no area: each new top-level module is a decision to write down here."""
    return [
        f"{module}: belongs to no area. Rule: every driftline module sits in a subpackage, the foundation "
        f"({', '.join(sorted(CORE_MODULES))}, driftline.examples) or the listed compatibility shims"
        for module in sorted(set(modules))
        if area(module) == "unknown"
    ]


def import_cycles(imports: Iterable[Import]) -> list[str]:
    """Loops between areas, counting runtime imports (deferred ones too; not those under TYPE_CHECKING)."""
    edges: dict[str, dict[str, Import]] = {}
    for item in imports:
        source, target = area(item.importer), area(item.module)
        if item.type_checking or source is None or target is None or source == target:
            continue
        edges.setdefault(source, {}).setdefault(target, item)
    problems = []
    for component in _strongly_connected(edges):
        if len(component) < 2:
            continue
        cycle = _shortest_cycle(edges, min(component), component)
        steps = [f"{a} -> {b} ({edges[a][b].where} imports {edges[a][b].target})" for a, b in itertools.pairwise(cycle)]
        problems.append(
            f"import loop {' -> '.join(cycle)}: {'; '.join(steps)}. Rule: areas import each other one way "
            "(docs/architecture.md); move the shared code down, or the caller up"
        )
    return problems


def _strongly_connected(edges: dict[str, dict[str, Import]]) -> list[set[str]]:
    nodes = sorted(set(edges) | {target for targets in edges.values() for target in targets})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, {})):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in nodes:
        if node not in index:
            visit(node)
    return components


def _shortest_cycle(edges: dict[str, dict[str, Import]], start: str, within: set[str]) -> list[str]:
    paths = [[start]]
    seen = {start}
    while paths:
        path = paths.pop(0)
        for target in sorted(edges.get(path[-1], {})):
            if target == start:
                return [*path, start]
            if target in within and target not in seen:
                seen.add(target)
                paths.append([*path, target])
    raise AssertionError(f"no cycle through {start}")  # a strongly connected component always has one


@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return scan(REPO)


def test_flows_import_tasks_and_result_types_not_the_logic(imports: list[Import]) -> None:
    assert flow_violations(imports, import_type_check) == []


def test_nothing_below_the_cli_imports_the_prefect_layer(imports: list[Import]) -> None:
    assert layer_violations(imports) == []


def test_every_driftline_module_belongs_to_an_area(imports: list[Import]) -> None:
    assert unplaced_modules(module_name(path, REPO) for path in source_files(REPO, ["driftline"])) == []


def test_areas_import_each_other_one_way(imports: list[Import]) -> None:
    assert import_cycles(imports) == []


def test_nothing_imports_the_compatibility_shims(imports: list[Import]) -> None:
    assert shim_importers(imports) == []


def test_the_scan_sees_deferred_and_type_checking_imports(imports: list[Import]) -> None:
    cli = [item for item in imports if item.importer == "driftline.cli.runs" and _top(item.module) == "flows"]
    assert cli, "driftline/cli imports flows inside its commands; the scan must see deferred imports"
    assert any(item.type_checking for item in imports), "driftline/oncall/events.py imports under TYPE_CHECKING"


# -- each rule can fail: a synthetic tree with one file that breaks it --------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for top in ROOTS:
        (root / top).mkdir(exist_ok=True)
        (root / top / "__init__.py").touch()
    return root


def _tree(root: Path, files: dict[str, str]) -> list[Import]:
    return scan(_write(root, files))


def _classes(module: str, name: str) -> bool:
    return name[:1].isupper()  # the synthetic tree is never imported: capitalised names stand for classes


def test_a_flow_reaching_into_the_logic_fails(tmp_path: Path) -> None:
    imports = _tree(
        tmp_path,
        {
            "driftline/loop/__init__.py": "",
            "driftline/loop/gate.py": "",
            "flows/good.py": (
                "from __future__ import annotations\nimport json\nfrom prefect import flow\n"
                "from tasks.gate import decide\nfrom driftline.spec import load_spec\n"
                "from driftline.loop.gate import GateDecision\n"
            ),
            "flows/bad.py": (
                "import pandas as pd\nfrom driftline.loop import gate\nfrom driftline.loop.gate import decide\n"
                "from driftline.spec import _private\n"
                "def run():\n    from driftline.loop.gate import _Hidden\n"
            ),
        },
    )
    problems = flow_violations(imports, _classes)
    assert [p.split(":")[:3] for p in problems] == [
        ["flows/bad.py", "1", " imports pandas"],
        ["flows/bad.py", "2", " imports driftline.loop.gate"],
        ["flows/bad.py", "3", " imports driftline.loop.gate.decide"],
        ["flows/bad.py", "4", " imports driftline.spec._private"],
        ["flows/bad.py", "6", " imports driftline.loop.gate._Hidden"],
    ]
    assert "is not a type" in problems[2] and "Rule: flows import tasks.*" in problems[2]


def test_driftline_importing_the_prefect_layer_fails_even_inside_a_function(tmp_path: Path) -> None:
    imports = _tree(
        tmp_path,
        {
            "flows/train.py": "",
            "driftline/cli/__init__.py": "def run():\n    from flows.train import train\n",
            "driftline/loop/__init__.py": "",
            "driftline/loop/gate.py": "def run():\n    from flows.train import train\n",
            "driftline/demo.py": "import deployments\n",
            "tasks/gate.py": "from flows import train\n",
        },
    )
    problems = layer_violations(imports)
    assert [p.split(". Rule")[0] for p in problems] == [
        "driftline/demo.py:1: imports deployments",
        "driftline/loop/gate.py:2: imports flows.train.train",
        "tasks/gate.py:1: imports flows.train",
    ]
    assert "only driftline/cli may" not in problems[0] and "but driftline/cli" in problems[0]


def test_an_import_loop_between_areas_fails_and_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    files = {
        "driftline/errors.py": "",
        "driftline/estimators.py": "from driftline.loop.estimators import Encoded\n",  # a shim: not a node
        "driftline/loop/__init__.py": "",
        "driftline/loop/estimators.py": "from driftline import errors\n",
        "driftline/loop/gate.py": "from driftline.monitoring import drift\n",
        "driftline/monitoring/__init__.py": "",
        "driftline/monitoring/drift.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from driftline.serving.config import Config\n"
        ),
        "driftline/serving/__init__.py": "",
        "driftline/serving/config.py": "from driftline.loop import gate\n",
    }
    assert import_cycles(_tree(tmp_path, files)) == []
    files["driftline/loop/gate.py"] += "from driftline.estimators import Encoded\n"
    assert [p.split(". Rule")[0] for p in shim_importers(scan(_write(tmp_path, files)))] == [
        "driftline/loop/gate.py:2: imports driftline.estimators.Encoded"
    ]
    files["driftline/loop/gate.py"] = "from driftline.monitoring import drift\n"
    files["driftline/monitoring/drift.py"] = "def score():\n    from driftline.serving.config import Config\n"
    problems = import_cycles(_tree(tmp_path, files))
    assert len(problems) == 1
    assert problems[0].startswith(
        "import loop driftline.loop -> driftline.monitoring -> driftline.serving -> driftline.loop: "
        "driftline.loop -> driftline.monitoring (driftline/loop/gate.py:1 imports driftline.monitoring.drift)"
    )


def test_a_new_top_level_module_must_be_placed(tmp_path: Path) -> None:
    _tree(tmp_path, {"driftline/errors.py": "", "driftline/helpers.py": "", "driftline/examples/fraud.py": ""})
    modules = [module_name(path, tmp_path) for path in source_files(tmp_path, ["driftline"])]
    assert [p.split(":")[0] for p in unplaced_modules(modules)] == ["driftline.helpers"]


# -- docs/architecture.md names only modules that exist ------------------------------------------------------------

MODULE_REFERENCE = re.compile(
    r"`((?:driftline|tasks|flows|deployments|expectations|tests)(?:[./][A-Za-z_][A-Za-z0-9_]*)*(?:\.py)?/?)"
    r"(?::([A-Za-z_][A-Za-z0-9_]*))?`"
)


def _defines(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            return True
        if isinstance(node, ast.ImportFrom) and any((alias.asname or alias.name) == name for alias in node.names):
            return True  # a re-export, as the compatibility shims do
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
        if any(isinstance(target, ast.Name) and target.id == name for target in targets):
            return True
    return False


def missing_references(text: str, root: Path) -> list[str]:
    """Module paths (``driftline/loop/gate.py``) and dotted names (``driftline.loop.gate``, ``pkg.module.NAME``)
    named in backticks that do not exist under ``root``."""
    missing = []
    for path, attribute in sorted(set(MODULE_REFERENCE.findall(text))):
        reference = f"{path}:{attribute}" if attribute else path
        if "/" in path:
            if not (root / path).exists():
                missing.append(f"{reference}: no such file or folder")
            continue
        parts = [*path.split("."), *([attribute] if attribute else [])]
        found = False
        for cut in range(len(parts), 0, -1):
            folder = root.joinpath(*parts[:cut])
            module = folder.with_suffix(".py") if not folder.is_dir() else folder / "__init__.py"
            if module.exists():
                rest = parts[cut:]
                found = not rest or (len(rest) == 1 and _defines(module, rest[0]))
                break
        if not found:
            missing.append(f"{reference}: no such module (or name in it)")
    return missing


def test_docs_architecture_names_only_modules_that_exist() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    assert len(MODULE_REFERENCE.findall(text)) >= 20, "the module map names the modules"
    assert missing_references(text, REPO) == []


def test_a_doc_naming_a_missing_module_fails(tmp_path: Path) -> None:
    (tmp_path / "driftline" / "loop").mkdir(parents=True)
    (tmp_path / "driftline" / "__init__.py").touch()
    (tmp_path / "driftline" / "loop" / "__init__.py").touch()
    (tmp_path / "driftline" / "loop" / "gate.py").write_text(
        "from json import dumps as write\nTHRESHOLD = 1\ndef decide(): ...\n"
    )
    text = (
        "`driftline/loop/gate.py`, `driftline.loop.gate`, `driftline.loop.gate.decide`, "
        "`driftline.loop.gate:THRESHOLD`, `driftline/loop/`, `driftline/loop/drift.py`, `driftline.monitoring`, "
        "`driftline.loop.gate.missing`, `driftline.loop.gate:Missing`, `driftline.loop.gate.write`"
    )
    assert missing_references(text, tmp_path) == [
        "driftline.loop.gate:Missing: no such module (or name in it)",
        "driftline.loop.gate.missing: no such module (or name in it)",
        "driftline.monitoring: no such module (or name in it)",
        "driftline/loop/drift.py: no such file or folder",
    ]
