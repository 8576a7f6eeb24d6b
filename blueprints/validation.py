"""Whole-document validation of blueprints: references, cycles, upstream rules, choices.

``check(definition)`` returns the spec and every error at once; ``check_text`` parses
YAML/JSON first and attaches the line each error points at.

A stage check may say ``severity: error`` (the default: a failure blocks submit) or
``severity: warn`` (a failure flags the run for reviewers as a QC flag and the work goes on);
any other severity is refused at ``stages[i].checks[j].severity``.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from .spec import (
    AGREEMENT_KINDS,
    DONE,
    AnnotationTypeRule,
    AnnotatorRule,
    Attribute,
    BlueprintInvalid,
    BlueprintSpec,
    ClassCondition,
    Collector,
    ConsensusStage,
    LabelClass,
    LogicStage,
    ReviewStage,
    SpecError,
    Stage,
    TaskDurationRule,
    as_list,
    iter_leaves,
    join,
    parse,
)

# --- meaning ------------------------------------------------------------------------------


def _find_cycles(deps: dict[str, list[str]]) -> list[list[str]]:
    colour: dict[str, int] = {}
    cycles: list[list[str]] = []
    stack: list[str] = []

    def visit(node: str) -> None:
        colour[node] = 1
        stack.append(node)
        for nxt in deps.get(node, []):
            if nxt not in deps:
                continue
            if colour.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif colour.get(nxt) is None:
                visit(nxt)
        stack.pop()
        colour[node] = 2

    for node in deps:
        if colour.get(node) is None:
            visit(node)
    return cycles


def _upstream(deps: dict[str, list[str]]) -> dict[str, set[str]]:
    memo: dict[str, set[str]] = {}

    def up(node: str, seen: frozenset) -> set[str]:
        if node in memo:
            return memo[node]
        result: set[str] = set()
        for dep in deps.get(node, []):
            if dep in deps and dep not in seen:
                result |= {dep} | up(dep, seen | {dep})
        memo[node] = result
        return result

    return {node: up(node, frozenset({node})) for node in deps}


def _columns(deps: dict[str, list[str]]) -> dict[str, int]:
    memo: dict[str, int] = {}

    def depth(node: str, seen: frozenset) -> int:
        if node not in memo:
            parents = [d for d in deps.get(node, []) if d in deps and d not in seen]
            memo[node] = 1 + max((depth(p, seen | {p}) for p in parents), default=-1)
        return memo[node]

    return {node: depth(node, frozenset({node})) for node in deps}


def _texts(value: Any) -> list[str]:
    """The strings of a raw list (what can be read from an item that failed to parse)."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


class _Meaning:
    def __init__(self, spec: BlueprintSpec, out: Collector) -> None:
        self.spec, self.out = spec, out
        self.classes = {c.key: c for c in spec.taxonomy if c is not None}
        self.stages = {s.key: s for s in spec.stages if s is not None}
        # Stages that failed to parse, as written: known by their key, so that nothing
        # referring to them is called unknown because of their own error.
        self.broken: dict[str, dict] = {}
        for i, raw in enumerate(spec.raw_stages):
            if i < len(spec.stages) and spec.stages[i] is None and isinstance(raw, dict):
                key = raw.get("key")
                if isinstance(key, str) and key not in self.stages:
                    self.broken.setdefault(key, raw)
        self.index = {s.key: i for i, s in enumerate(spec.stages) if s is not None}
        for i, raw in enumerate(spec.raw_stages):
            key = raw.get("key") if isinstance(raw, dict) else None
            if isinstance(key, str) and key in self.broken:  # a key may be any JSON value
                self.index.setdefault(key, i)

    def _known(self, key: str) -> bool:
        return key in self.stages or key in self.broken

    def _depends_on(self, key: str) -> list[str]:
        if key in self.stages:
            return list(self.stages[key].depends_on)
        return _texts(self.broken.get(key, {}).get("depends_on"))

    def run(self) -> None:
        self._duplicates()
        for i, cls in enumerate(self.spec.taxonomy):
            if cls is not None:
                self._label_class(cls, join("taxonomy", i))
        deps = {key: self._depends_on(key) for key in [*self.stages, *self.broken]}
        for key, i in self.index.items():
            for j, dep in enumerate(deps[key]):
                if dep == key:
                    self.out.add(
                        join("stages", i, "depends_on", j), "a stage cannot depend on itself"
                    )
                elif not self._known(dep):
                    self.out.add(join("stages", i, "depends_on", j), f"unknown stage “{dep}”")
        for cycle in _find_cycles(deps):
            if len(cycle) > 2:
                first = self.index[cycle[0]]
                self.out.add(
                    join("stages", first, "depends_on"),
                    "dependency cycle: " + " → ".join(cycle),
                )
        self.upstream = _upstream(deps)
        for i, stage in enumerate(self.spec.stages):
            if stage is not None:
                self._stage(stage, join("stages", i))
        for key, raw in self.broken.items():
            self._broken_stage(key, raw, join("stages", self.index[key]))
        self.spec.classes = self.classes
        self.spec.by_key = self.stages
        self.spec.upstream = self.upstream
        self.spec.columns = _columns(deps)

    def _duplicates(self) -> None:
        for items, what, base in (
            (self.spec.taxonomy, "class", "taxonomy"),
            (self.spec.stages, "stage", "stages"),
        ):
            seen: dict[str, int] = {}
            for i, item in enumerate(items):
                if item is None:
                    continue
                if item.key in seen:
                    self.out.add(
                        join(base, i, "key"),
                        f"duplicate {what} key “{item.key}” (also {base}[{seen[item.key]}])",
                    )
                else:
                    seen[item.key] = i
        if DONE in self.stages:
            self.out.add(
                join("stages", self.index[DONE], "key"),
                "“done” is reserved for the end of the pipeline",
            )

    def _label_class(self, cls: LabelClass, path: str) -> None:
        if cls.kind == "classification":
            if not cls.choices or len(cls.choices) < 2:
                self.out.add(join(path, "choices"), "a classification needs at least two choices")
        elif cls.choices is not None:
            self.out.add(
                join(path, "choices"), f"only classifications have choices, not a {cls.kind}"
            )
        if cls.choices and len(set(cls.choices)) != len(cls.choices):
            self.out.add(join(path, "choices"), "choices repeat")
        seen = set()
        for j, attribute in enumerate(cls.attributes):
            apath = join(path, "attributes", j)
            if attribute.key in seen:
                self.out.add(join(apath, "key"), f"duplicate attribute key “{attribute.key}”")
            seen.add(attribute.key)
            if attribute.type == "choice" and not attribute.choices:
                self.out.add(join(apath, "choices"), "a choice attribute needs choices")
            if attribute.type != "choice" and attribute.choices is not None:
                self.out.add(
                    join(apath, "choices"),
                    f"only choice attributes have choices, not {attribute.type}",
                )
            if (
                attribute.min is not None or attribute.max is not None
            ) and attribute.type != "number":
                self.out.add(apath, "min and max are for number attributes")
            if (
                attribute.min is not None
                and attribute.max is not None
                and attribute.min > attribute.max
            ):
                self.out.add(join(apath, "min"), "min is larger than max")

    def _stage_classes(self, key: str) -> list[str]:
        if key in self.stages:
            return list(self.stages[key].classes)
        return _texts(self.broken.get(key, {}).get("classes"))

    def _classes_added_upstream(self, stage_key: str) -> set[str]:
        keys = self.upstream.get(stage_key, set())
        return {c for k in keys for c in self._stage_classes(k)}

    def _target(self, logic_key: str, target: Any, path: str) -> None:
        """A logic rule's (or else's) target: ``done`` or a stage that depends on the logic."""
        if target == DONE or not isinstance(target, str):
            return
        if not self._known(target):
            self.out.add(path, f"unknown stage “{target}” (or “done”)")
        elif logic_key not in self._depends_on(target):
            self.out.add(
                path,
                f"“{target}” does not depend on logic stage “{logic_key}” "
                f"(add “{logic_key}” to its depends_on)",
            )

    def _broken_stage(self, key: str, raw: dict, path: str) -> None:
        """What can still be checked of a stage that failed to parse: its references."""
        for j, cls in enumerate(_texts(raw.get("classes"))):
            if cls not in self.classes:
                self.out.add(join(path, "classes", j), f"unknown class “{cls}”")
        for j, reviewed in enumerate(_texts(raw.get("reviews"))):
            if not self._known(reviewed):
                self.out.add(join(path, "reviews", j), f"unknown stage “{reviewed}”")
        if raw.get("kind") == "logic":
            for j, rule in enumerate(as_list(raw.get("rules"))):
                if isinstance(rule, dict):
                    self._target(key, rule.get("to"), join(path, "rules", j, "to"))
            self._target(key, raw.get("else"), join(path, "else"))

    def _class_condition(
        self, leaf: ClassCondition, path: str, owner: str, allowed_classes: set[str] | None
    ) -> None:
        if leaf.stage is not None:
            if leaf.stage not in self.stages:
                if leaf.stage not in self.broken:  # a broken stage has its own errors
                    self.out.add(join(path, "stage"), f"unknown stage “{leaf.stage}”")
                return
            if leaf.stage not in self.upstream.get(owner, set()):
                self.out.add(
                    join(path, "stage"),
                    f"“{leaf.stage}” is not upstream of “{owner}” "
                    "(add it to depends_on, directly or through other stages)",
                )
                return
            allowed_classes = set(self.stages[leaf.stage].classes)
        cls = self.classes.get(leaf.class_)
        if cls is None:
            self.out.add(join(path, "class"), f"unknown class “{leaf.class_}”")
            return
        if allowed_classes is not None and leaf.class_ not in allowed_classes:
            where = f"stage “{leaf.stage}”" if leaf.stage else f"the stages upstream of “{owner}”"
            self.out.add(join(path, "class"), f"class “{leaf.class_}” is not added by {where}")
        values = list(leaf.in_ or []) + ([leaf.equals] if leaf.equals is not None else [])
        if leaf.equals is not None and leaf.in_ is not None:
            self.out.add(path, "use either equals or in, not both")
        if leaf.attribute is not None:
            attribute = cls.attribute(leaf.attribute)
            if attribute is None:
                known = ", ".join(a.key for a in cls.attributes) or "none"
                self.out.add(
                    join(path, "attribute"),
                    f"class “{cls.key}” has no attribute “{leaf.attribute}” (attributes: {known})",
                )
                return
            for value in values:
                self._value_fits(value, attribute, join(path, "in" if leaf.in_ else "equals"))
        elif values:
            if cls.kind != "classification":
                self.out.add(
                    join(path, "equals" if leaf.equals is not None else "in"),
                    f"compare an attribute of “{cls.key}” (name it with attribute:), "
                    "or use a classification class",
                )
            else:
                for value in values:
                    if value not in (cls.choices or []):
                        self.out.add(
                            join(path, "in" if leaf.in_ else "equals"),
                            f"“{value}” is not one of {cls.key}'s choices "
                            f"({', '.join(cls.choices or [])})",
                        )

    def _value_fits(self, value: Any, attribute: Attribute, path: str) -> None:
        if attribute.type == "choice" and value not in (attribute.choices or []):
            choices = ", ".join(map(str, attribute.choices or []))
            self.out.add(path, f"“{value}” is not one of {attribute.key}'s choices ({choices})")
        elif attribute.type == "boolean" and not isinstance(value, bool):
            self.out.add(path, f"{attribute.key} is true or false, not “{value}”")
        elif attribute.type == "number" and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            self.out.add(path, f"{attribute.key} is a number, not “{value}”")

    def _stage(self, stage: Stage, path: str) -> None:
        for j, key in enumerate(stage.classes):
            cls = self.classes.get(key)
            if cls is None:
                self.out.add(join(path, "classes", j), f"unknown class “{key}”")
            elif isinstance(stage, ConsensusStage) and cls.kind not in AGREEMENT_KINDS:
                self.out.add(
                    join(path, "classes", j),
                    f"a consensus stage cannot measure agreement on {cls.kind} class “{key}”",
                )
        if isinstance(stage, ReviewStage | LogicStage) and stage.classes:
            self.out.add(join(path, "classes"), f"a {stage.kind} stage adds no classes")
        for leaf, sub in iter_leaves(stage.when):
            if leaf.stage is None:
                self.out.add(
                    join(join(path, "when", *sub), "stage"),
                    "a when condition names the stage whose annotations it reads",
                )
                continue
            self._class_condition(leaf, join(path, "when", *sub), stage.key, None)
        for j, check in enumerate(stage.checks):
            if check is None:
                continue
            cpath = join(path, "checks", j)
            if isinstance(stage, ReviewStage | LogicStage):
                self.out.add(cpath, f"a {stage.kind} stage has no annotations to check")
                continue
            if check.class_ is not None:
                if check.class_ not in stage.classes:
                    self.out.add(
                        join(cpath, "class"),
                        f"class “{check.class_}” is not one of this stage's classes",
                    )
                elif (
                    check.kinds
                    and self.classes.get(check.class_)
                    and self.classes[check.class_].kind not in check.kinds
                ):
                    kind = self.classes[check.class_].kind
                    self.out.add(
                        join(cpath, "rule"),
                        f"{check.type_name} does not apply to {kind} class “{check.class_}”",
                    )
        if isinstance(stage, ReviewStage):
            for j, key in enumerate(stage.reviews):
                if key in self.broken:
                    continue  # it has errors of its own
                if key not in self.stages:
                    self.out.add(join(path, "reviews", j), f"unknown stage “{key}”")
                elif key not in self.upstream.get(stage.key, set()):
                    self.out.add(
                        join(path, "reviews", j), f"“{key}” is not upstream of review “{stage.key}”"
                    )
                elif self.stages[key].kind not in {"annotate", "consensus"}:
                    self.out.add(
                        join(path, "reviews", j),
                        f"“{key}” is a {self.stages[key].kind} stage; "
                        "reviews are of annotate or consensus stages",
                    )
        if isinstance(stage, LogicStage):
            self._logic(stage, path)

    def _logic(self, stage: LogicStage, path: str) -> None:
        upstream_classes = self._classes_added_upstream(stage.key)
        work = [
            k
            for k in self.upstream.get(stage.key, set())
            if k in self.stages and self.stages[k].kind in {"annotate", "consensus"}
        ]
        raw = self.spec.raw_stages[self.index[stage.key]]
        raw_rules = as_list(raw.get("rules")) if isinstance(raw, dict) else []
        for j, rule in enumerate(stage.rules):
            rpath = join(path, "rules", j)
            if rule is None:  # its own errors are reported; its target is still checked
                target = raw_rules[j].get("to") if isinstance(raw_rules[j], dict) else None
                self._target(stage.key, target, join(rpath, "to"))
                continue
            self._target(stage.key, rule.to, join(rpath, "to"))
            if isinstance(rule, AnnotationTypeRule):
                for k, leaf in enumerate(rule.conditions):
                    self._class_condition(
                        leaf, join(rpath, "conditions", k), stage.key, upstream_classes
                    )
            elif isinstance(rule, AnnotatorRule | TaskDurationRule) and not work:
                self.out.add(
                    join(rpath, "match"),
                    f"match “{rule.type_name}” needs annotate or consensus work upstream "
                    f"of “{stage.key}” (add it to depends_on)",
                )
        self._target(stage.key, stage.else_, join(path, "else"))


# --- entry points -------------------------------------------------------------------------


def check(definition: Any) -> tuple[BlueprintSpec | None, list[SpecError]]:
    """Validate a document; returns the spec (None when invalid) and every error."""
    out = Collector()
    try:
        spec = parse(definition, out)
        if spec is not None:
            _Meaning(spec, out).run()
    except RecursionError:
        out.add("", "the document is nested too deeply")
        spec = None
    errors = list(dict.fromkeys(out.errors))
    return (spec if not errors else None), errors


def validate(definition: Any) -> BlueprintSpec:
    spec, errors = check(definition)
    if errors or spec is None:
        raise BlueprintInvalid(errors)
    return spec


def load_text(text: str) -> tuple[Any, list[SpecError]]:
    """Parse YAML (or JSON, a subset) into a document; syntax errors come with their line."""
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [
            SpecError("", f"YAML syntax error: {problem}", mark.line + 1 if mark else None)
        ]


def check_text(text: str) -> tuple[Any, BlueprintSpec | None, list[SpecError]]:
    """Parse and validate a YAML/JSON text; errors carry the line they point at."""
    definition, errors = load_text(text)
    if errors:
        return None, None, errors
    spec, errors = check(definition)
    return definition, spec, locate(text, errors)


def locate(text: str, errors: list[SpecError]) -> list[SpecError]:
    """Attach 1-based line numbers to errors by walking the YAML node tree along each path."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return errors
    if root is None:
        return errors
    return [SpecError(e.path, e.message, _line(root, e.path)) for e in errors]


def _tokens(path: str) -> list[str | int]:
    tokens: list[str | int] = []
    for part in path.replace("]", "").split("."):
        if not part:
            continue
        name, *indices = part.split("[")
        if name:
            tokens.append(name)
        tokens.extend(int(i) for i in indices)
    return tokens


def _line(node, path: str) -> int:
    line = node.start_mark.line
    for token in _tokens(path):
        if isinstance(node, yaml.MappingNode) and isinstance(token, str):
            pair = next((p for p in node.value if p[0].value == token), None)
            if pair is None:
                break
            line, node = pair[0].start_mark.line, pair[1]
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(token, int)
            and token < len(node.value)
        ):
            node = node.value[token]
            line = node.start_mark.line
        else:
            break
    return line + 1


def to_yaml(definition: Any) -> str:
    return yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100)


def canonical(definition: Any) -> str:
    """A stable text of a document, for comparing versions."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
