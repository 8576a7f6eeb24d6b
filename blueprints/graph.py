"""The pipeline of a blueprint as a server-rendered SVG.

Stages are boxes in dependency columns (left to right); stages of the same depth —
parallel work — stand in one column. Edges go from a dependency to its dependant;
edges out of a logic stage carry the rules that route there; conditional stages have
a dashed border and their condition under the title.
"""

from __future__ import annotations

from html import escape

from .spec import DONE, BlueprintSpec, LogicStage, ReviewStage

BOX_W, BOX_H = 176, 62
COL_GAP, ROW_GAP, MARGIN, LANE = 150, 28, 20, 12
STYLE = {
    "annotate": ("#e3f0ff", "#2f6fde"),
    "consensus": ("#dff7f5", "#0f8a83"),
    "review": ("#f3e8ff", "#7c3aed"),
    "logic": ("#fff4d6", "#b7791f"),
    DONE: ("#e6f4ea", "#1e8e3e"),
}


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _subtitle(stage) -> str:
    if isinstance(stage, ReviewStage):
        return "review of " + ", ".join(stage.reviews)
    if isinstance(stage, LogicStage):
        return f"logic · {len(stage.rules)} rule(s)"
    if stage.kind == "consensus":
        return f"consensus ×{stage.annotators} · {', '.join(stage.classes)}"
    return "annotate · " + ", ".join(stage.classes)


def _edge_labels(spec: BlueprintSpec) -> dict[tuple[str, str], list[str]]:
    labels: dict[tuple[str, str], list[str]] = {}
    for stage in spec.stages:
        if isinstance(stage, LogicStage):
            for rule in stage.rules:
                labels.setdefault((stage.key, rule.to), []).append(rule.describe())
            labels.setdefault((stage.key, stage.else_), []).append("else")
    return labels


def pipeline_svg(spec: BlueprintSpec) -> str:
    labels = _edge_labels(spec)
    columns = dict(spec.columns)
    routes_to_done = any(target == DONE for _, target in labels)
    if routes_to_done:
        columns[DONE] = max(columns.values(), default=-1) + 1
    by_column: dict[int, list[str]] = {}
    order = {s.key: i for i, s in enumerate(spec.stages)}
    for key, column in sorted(columns.items(), key=lambda kv: (kv[1], order.get(kv[0], 1e9))):
        by_column.setdefault(column, []).append(key)
    tallest = max((len(keys) for keys in by_column.values()), default=1)
    pairs = [(dep, s.key) for s in spec.stages for dep in s.depends_on if dep in columns]
    pairs += [(src, DONE) for src, target in labels if target == DONE]
    # Edges that skip a column run in lanes above the boxes, so that they cross none.
    long_edges = [p for p in pairs if columns[p[1]] - columns[p[0]] > 1]
    top_space = MARGIN + LANE * len(long_edges)
    height = top_space + MARGIN + tallest * BOX_H + (tallest - 1) * ROW_GAP
    width = MARGIN * 2 + len(by_column) * BOX_W + (len(by_column) - 1) * COL_GAP
    pos: dict[str, tuple[float, float]] = {}
    for column, keys in by_column.items():
        block = len(keys) * BOX_H + (len(keys) - 1) * ROW_GAP
        top = top_space + (height - top_space - MARGIN - block) / 2
        for row, key in enumerate(keys):
            pos[key] = (MARGIN + column * (BOX_W + COL_GAP), top + row * (BOX_H + ROW_GAP))

    edges, texts = [], []
    for source, target in pairs:
        (x1, y1), (x2, y2) = pos[source], pos[target]
        x1, y1, x2, y2 = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        if (source, target) in long_edges:
            lane = MARGIN / 2 + LANE * long_edges.index((source, target))
            path = (
                f"M{x1:.0f},{y1:.0f} C{x1 + 40:.0f},{y1:.0f} {x1 + 20:.0f},{lane:.0f} "
                f"{x1 + 60:.0f},{lane:.0f} L{x2 - 60:.0f},{lane:.0f} "
                f"C{x2 - 20:.0f},{lane:.0f} {x2 - 40:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
            )
        else:
            bend = max(30.0, (x2 - x1) / 2)
            path = (
                f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} "
                f"{x2:.0f},{y2:.0f}"
            )
        edges.append(
            f'<path d="{path}" fill="none" stroke="#9aa5b1" stroke-width="1.5" '
            'marker-end="url(#arrow)"/>'
        )
        rules = labels.get((source, target))
        if rules:
            # One line per rule, stacked above the arrow's end, in the gap between columns.
            lines = "".join(
                f'<tspan x="{x2 - 10:.0f}" dy="{"0" if i == 0 else "-13"}">'
                f"{escape(_truncate(text, 24))}</tspan>"
                for i, text in enumerate(reversed(rules))
            )
            texts.append(
                f'<text x="{x2 - 10:.0f}" y="{y2 - 7:.0f}" class="edge-label" text-anchor="end">'
                f"<title>{escape(' / '.join(rules))}</title>{lines}</text>"
            )

    nodes = []
    for key, (x, y) in pos.items():
        stage = spec.by_key.get(key)
        kind = stage.kind if stage else DONE
        fill, stroke = STYLE[kind]
        dashed = ' stroke-dasharray="6 4"' if stage is not None and stage.when else ""
        title = escape(_truncate(stage.title if stage else "done", 24))
        lines = [f'<text x="{x + 10:.0f}" y="{y + 22:.0f}" class="node-title">{title}</text>']
        if stage is not None:
            sub = escape(_truncate(_subtitle(stage), 30))
            lines.append(f'<text x="{x + 10:.0f}" y="{y + 39:.0f}" class="node-sub">{sub}</text>')
            if stage.when:
                when = escape(_truncate("if " + stage.when.describe(), 30))
                lines.append(
                    f'<text x="{x + 10:.0f}" y="{y + 54:.0f}" class="node-when">{when}</text>'
                )
        described = escape(
            f"{key} ({kind})" + (": if " + stage.when.describe() if stage and stage.when else "")
        )
        nodes.append(
            f'<g class="stage stage-{kind}" data-stage="{escape(key)}"><title>{described}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="8" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.6"{dashed}/>'
            + "".join(lines)
            + "</g>"
        )
    summary = escape(
        f"Pipeline of {spec.name}: "
        + "; ".join(
            f"{s.key} after {', '.join(s.depends_on)}" if s.depends_on else f"{s.key} first"
            for s in spec.stages
        )
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pipeline" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{summary}">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#9aa5b1"/></marker>'
        "<style>.node-title{font:600 13px system-ui,sans-serif;fill:#1f2933}"
        ".node-sub{font:11px system-ui,sans-serif;fill:#52606d}"
        ".node-when{font:italic 11px system-ui,sans-serif;fill:#b7791f}"
        ".edge-label{font:11px system-ui,sans-serif;fill:#7b4d00;paint-order:stroke;"
        "stroke:#fff;stroke-width:3px}</style></defs>"
        + "".join(edges)
        + "".join(nodes)
        + "".join(texts)
        + "</svg>"
    )
