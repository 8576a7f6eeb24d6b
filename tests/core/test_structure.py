"""Structure rules the code must keep, checked on its syntax tree (no database)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {".venv", "tests", "node_modules", "static", "bench", "scripts"}


def _interface_modules() -> list[Path]:
    """Every views.py, *_views.py, api.py and *_api.py of the project's own packages."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in SKIPPED or relative.parts[0].startswith("."):
            continue
        name = path.name
        if name in {"views.py", "api.py"} or name.endswith(("_views.py", "_api.py")):
            found.append(path)
    return found


def _orm_uses(source: str) -> list[tuple[int, str]]:
    return sorted(
        (node.lineno, ast.unparse(node))
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr == "objects"
    )


def test_the_rule_sees_manager_access():
    assert _orm_uses("Task.objects.filter(pk=1)\nx = Model.objects\n") == [
        (1, "Task.objects"),
        (2, "Model.objects"),
    ]
    assert _orm_uses("objects = 1\ntask.runs.all()\n") == []


def test_interface_modules_are_found():
    names = {str(p.relative_to(ROOT)) for p in _interface_modules()}
    assert {"projects/views.py", "projects/api.py", "queues/admin_views.py"} <= names
    assert "projects/dataset_api.py" in names


def test_views_and_api_never_query_the_orm_directly():
    """Pages and the API read through selectors and ``*_get_for_user`` access helpers,
    which filter by permission in one place (STYLE.md §4–5)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {code}"
        for path in _interface_modules()
        for line, code in _orm_uses(path.read_text())
    ]
    assert not offenders, "Use a selector instead of the ORM in:\n" + "\n".join(offenders)
