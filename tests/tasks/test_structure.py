"""The task services import each other only by public names, and their imports form a tree
(no cycles): the shared pieces live in base, sync and access."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "tasks" / "services"


def sibling_imports() -> dict[str, list[tuple[str, str]]]:
    graph: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        graph[path.stem] = [
            (node.module, alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
            for alias in node.names
        ]
    return graph


def test_no_service_module_imports_a_private_name_of_another():
    private = [
        f"{module} imports {name} from .{source}"
        for module, imports in sibling_imports().items()
        for source, name in imports
        if name.startswith("_")
    ]
    assert private == []


def test_the_service_modules_import_each_other_without_cycles():
    graph = {
        module: {source for source, _ in imports}
        for module, imports in sibling_imports().items()
        if module != "__init__"
    }
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for nxt in graph.get(module, ()):
            assert state.get(nxt) != "open", " → ".join([*path, nxt])
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
