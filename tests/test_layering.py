"""The package's modules depend one way: no import circle, between modules or between packages.

Every import counts: inside functions, and under ``if TYPE_CHECKING:`` too (a typing-only import is still a
dependency of the design; the one it hid, recipes <-> methods, is gone). The layers this keeps:
settings -> sections -> recipes (the loader: no method, no torch) -> engine / generators / methods -> api -> cli;
zoo.registry -> zoo.loading -> zoo.timm_format. Between packages (``data``, ``zoo``, ``audit``, ``methods``, a
top-level module each) the same holds, so a loop cannot hide behind a function-level import in one module.
"""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "zeroshot_unlearn"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def _unit(module: str) -> str:
    """The package a module belongs to for the package-level graph: ``zeroshot_unlearn.data.folder`` ->
    ``zeroshot_unlearn.data``; a top-level module is its own unit."""
    return ".".join(module.split(".")[:2])


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return circles


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def import_circles() -> list[list[str]]:
    return _circles(import_graph())


def package_circles() -> list[list[str]]:
    packages: dict[str, set[str]] = {}
    for name, targets in import_graph().items():
        edges = packages.setdefault(_unit(name), set())
        edges.update(_unit(t) for t in targets if _unit(t) != _unit(name))
    for targets in list(packages.values()):
        for target in targets:
            packages.setdefault(target, set())
    return _circles(packages)


def test_the_package_has_no_import_circle():
    assert import_circles() == []


def test_no_two_packages_import_each_other():
    assert package_circles() == []


def test_the_analysis_finds_circles_however_they_are_hidden(tmp_path, monkeypatch):
    package = tmp_path / "zeroshot_unlearn"
    (package / "p").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from .b import g\n")  # inside a function
    (package / "b.py").write_text("from .a import f\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import x\n")
    (package / "d.py").write_text("from .c import y\n")  # typing only: still a circle
    (package / "p" / "__init__.py").write_text("")
    (package / "p" / "one.py").write_text("from ..e import z\n")
    (package / "e.py").write_text("from .p.two import w\n")  # modules apart, packages in a loop
    (package / "p" / "two.py").write_text("")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", package)
    assert sorted(import_circles()) == [["zeroshot_unlearn.a", "zeroshot_unlearn.b"], ["zeroshot_unlearn.c", "zeroshot_unlearn.d"]]
    assert ["zeroshot_unlearn.e", "zeroshot_unlearn.p"] in package_circles()


def test_loading_a_recipe_imports_no_torch_and_no_method():
    code = ("import sys\nfrom zeroshot_unlearn.recipes import load_recipe\n"
            "recipe = load_recipe('imagenet')\nrecipe.section('data_free'); recipe.section('masked_kd')\n"
            "print(sorted(m for m in ('torch', 'numpy', 'kornia', 'zeroshot_unlearn.methods') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
