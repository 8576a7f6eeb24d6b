"""The workspace page's JS+CSS stays under the issue's 150 KB budget: the stylesheets and
scripts the page names, and every ES module they import, counted as served."""

import re
from pathlib import Path

from django.conf import settings

BUDGET = 150_000
STATIC = Path(settings.BASE_DIR) / "static"


def page_assets(html: str) -> set[Path]:
    """The static files the page loads: <script src>, <link rel=stylesheet> and their imports."""
    found = re.findall(r'<script[^>]+src="/static/([^"]+)"', html)
    found += re.findall(r'<link rel="stylesheet" href="/static/([^"]+)"', html)
    todo, seen = [STATIC / f for f in found], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.suffix == ".js":
            imports = re.findall(r'(?:from|import)\s*"(\./[^"]+)"', path.read_text())
            todo.extend((path.parent / name).resolve() for name in imports)
    return seen


def test_the_workspace_page_loads_under_150_kb_of_js_and_css(client, annotator, work):
    client.force_login(annotator)
    html = client.get(f"/workspace/{work.pk}/annotate/").content.decode()
    assets = page_assets(html)
    assert any(p.name == "main.js" for p in assets) and any(p.suffix == ".css" for p in assets)
    assert not any("htmx" in p.name for p in assets)  # the workspace does not use htmx
    total = sum(p.stat().st_size for p in assets)
    assert total < BUDGET, sorted((p.stat().st_size, p.name) for p in assets)
