"""The blueprint document: a typed spec (pydantic) with whole-document validation.

``validate(definition)`` returns a ``BlueprintSpec`` or raises ``BlueprintInvalid``
carrying every error at once, each with its path (``stages[3].rules[1].to``) and a
plain-words message. Validation runs in two passes: the structure of each class and
stage (pydantic, per item, so one bad stage does not hide the others), then the
meaning of the whole (references, cycles, upstream rules, choices).

Logic rules and stage checks are open sets: one small class per type, registered
with ``@rule_type`` / ``@check_type``. Every check takes ``severity``: ``error`` (the
default) blocks submit, ``warn`` flags the work for reviewers (QC flags) and lets it go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    model_validator,
)

from core.exceptions import ApplicationError

DONE = "done"
Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
ClassKind = Literal["box", "polygon", "keypoint", "segment", "classification", "text"]
StageKind = Literal["annotate", "review", "logic", "consensus"]
GEOMETRY_KINDS = {"box", "polygon", "keypoint"}
AGREEMENT_KINDS = {"box", "polygon", "keypoint", "segment", "classification"}


# --- errors -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecError:
    path: str
    message: str
    line: int | None = None

    def as_dict(self) -> dict:
        return {"path": self.path, "message": self.message, "line": self.line}


class BlueprintInvalid(ApplicationError):
    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = errors
        summary = "; ".join(f"{e.path or 'document'}: {e.message}" for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(f"The blueprint is not valid: {summary}{more}", field="definition")

    def body(self) -> dict:
        by_path: dict[str, list[str]] = {}
        for error in self.errors:
            by_path.setdefault(error.path or "document", []).append(error.message)
        return {"definition": by_path}


def join(path: str, *parts: str | int) -> str:
    for part in parts:
        if isinstance(part, int):
            path = f"{path}[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field here",
    "string_pattern_mismatch": "must be lower-case letters, digits and underscores, "
    "starting with a letter",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "list_type": "must be a list",
    "dict_type": "must be a mapping (key: value)",
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
}


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _message(error: Mapping[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}".replace("'", "")
    if kind in {"greater_than_equal", "greater_than"}:
        word = "at least" if kind == "greater_than_equal" else "more than"
        return f"must be {word} {_num(ctx.get('ge', ctx.get('gt')))}"
    if kind in {"less_than_equal", "less_than"}:
        word = "at most" if kind == "less_than_equal" else "less than"
        return f"must be {word} {_num(ctx.get('le', ctx.get('lt')))}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"]


class Collector:
    """Gathers errors while parsing; ``model()`` turns pydantic errors into paths."""

    def __init__(self) -> None:
        self.errors: list[SpecError] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(SpecError(path, message))

    def model(self, cls: type[BaseModel], raw: Any, path: str) -> Any:
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                loc = [
                    p
                    for p in error["loc"]
                    if not (isinstance(p, str) and p.startswith("function-"))
                ]
                self.add(join(path, *loc), _message(error))
            return None


# --- the document's parts -----------------------------------------------------------------


class Base(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)


class Attribute(Base):
    key: Key
    name: str | None = None
    type: Literal["text", "choice", "boolean", "number"]
    choices: list[str | int | float] | None = None
    required: bool = False
    min: float | None = None
    max: float | None = None


class LabelClass(Base):
    key: Key
    name: str | None = None
    kind: ClassKind
    description: str = ""
    color: str | None = None
    choices: list[str] | None = None
    attributes: list[Attribute] = []

    def attribute(self, key: str) -> Attribute | None:
        return next((a for a in self.attributes if a.key == key), None)


class StageParams(Base):
    instructions: str = ""
    required_skills: list[str] = []
    time_limit: int | None = Field(default=None, gt=0, description="seconds")
    sampling: float | None = Field(
        default=None, ge=0, le=100, description="percent of the task's samples to annotate"
    )


# Conditions: a leaf about one class, or all/any/not of conditions.


class ClassCondition(Base):
    """A class present (or absent) in a stage's annotations, optionally with an attribute value."""

    stage: Key | None = None
    class_: Key = Field(alias="class")
    present: bool = True
    attribute: Key | None = None
    equals: str | int | float | bool | None = None
    in_: list[str | int | float | bool] | None = Field(default=None, alias="in")
    min_count: int | None = Field(default=None, ge=1)

    def describe(self) -> str:
        what = self.class_
        if self.attribute:
            value = self.equals if self.in_ is None else "|".join(map(str, self.in_))
            what = f"{what}.{self.attribute}={value}"
        elif self.equals is not None:
            what = f"{what}={self.equals}"
        return what if self.present else f"no {what}"


@dataclass
class AllOf:
    all: list[Condition]

    def describe(self) -> str:
        return " and ".join(c.describe() for c in self.all)


@dataclass
class AnyOf:
    any: list[Condition]

    def describe(self) -> str:
        return " or ".join(c.describe() for c in self.any)


@dataclass
class Not:
    not_: Condition

    def describe(self) -> str:
        return f"not ({self.not_.describe()})"


Condition = ClassCondition | AllOf | AnyOf | Not


def iter_leaves(condition: Condition | None) -> Iterable[tuple[ClassCondition, tuple]]:
    """Leaves of a condition tree with their relative paths."""
    if condition is None:
        return
    if isinstance(condition, ClassCondition):
        yield condition, ()
    elif isinstance(condition, Not):
        for leaf, sub in iter_leaves(condition.not_):
            yield leaf, ("not", *sub)
    else:
        name = "all" if isinstance(condition, AllOf) else "any"
        for i, child in enumerate(getattr(condition, name)):
            for leaf, sub in iter_leaves(child):
                yield leaf, (name, i, *sub)


def parse_condition(raw: Any, path: str, out: Collector) -> Condition | None:
    if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in {"all", "any", "not"}:
        ((word, value),) = raw.items()
        if word == "not":
            inner = parse_condition(value, join(path, "not"), out)
            return Not(inner) if inner is not None else None
        if not isinstance(value, list) or not value:
            out.add(join(path, word), f"“{word}” needs a list of conditions")
            return None
        children = [parse_condition(v, join(path, word, i), out) for i, v in enumerate(value)]
        parts = [c for c in children if c is not None]
        if len(parts) < len(children):
            return None
        return AllOf(parts) if word == "all" else AnyOf(parts)
    return out.model(ClassCondition, raw, path)


# Logic rules: one small class per rule type.

RULE_TYPES: dict[str, type[Rule]] = {}


def rule_type(cls: type[Rule]) -> type[Rule]:
    RULE_TYPES[cls.type_name] = cls
    return cls


class Rule(Base):
    type_name: ClassVar[str]
    match: str
    to: Key

    def describe(self) -> str:
        return self.type_name


@rule_type
class AnnotationTypeRule(Rule):
    """Routes when every condition holds (classes present/absent, attribute values)."""

    type_name = "annotation_type"
    match: Literal["annotation_type"]
    conditions: list[ClassCondition] = Field(min_length=1)

    def describe(self) -> str:
        return " & ".join(c.describe() for c in self.conditions)


@rule_type
class AnnotatorRule(Rule):
    type_name = "annotator"
    match: Literal["annotator"]
    users: list[str] = Field(min_length=1)

    def describe(self) -> str:
        return "by " + ", ".join(self.users)


@rule_type
class RandomSampleRule(Rule):
    type_name = "random_sample"
    match: Literal["random_sample"]
    percent: float = Field(ge=0, le=100)

    def describe(self) -> str:
        return f"{self.percent:g}% sample"


@rule_type
class TaskDurationRule(Rule):
    type_name = "task_duration"
    match: Literal["task_duration"]
    longer_than: float | None = Field(default=None, ge=0)
    shorter_than: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self):
        if self.longer_than is None and self.shorter_than is None:
            raise ValueError("task_duration needs longer_than or shorter_than (seconds)")
        if (
            self.longer_than is not None
            and self.shorter_than is not None
            and self.longer_than >= self.shorter_than
        ):
            raise ValueError("longer_than must be less than shorter_than")
        return self

    def describe(self) -> str:
        parts = []
        if self.longer_than is not None:
            parts.append(f"> {self.longer_than:g} s")
        if self.shorter_than is not None:
            parts.append(f"< {self.shorter_than:g} s")
        return "time " + " and ".join(parts)


@rule_type
class BatchRule(Rule):
    type_name = "batch"
    match: Literal["batch"]
    batches: list[str] = Field(min_length=1)

    def describe(self) -> str:
        return "batch " + ", ".join(self.batches)


@rule_type
class DatasetRule(Rule):
    type_name = "dataset"
    match: Literal["dataset"]
    datasets: list[str | int] = Field(min_length=1)

    def describe(self) -> str:
        return "dataset " + ", ".join(map(str, self.datasets))


# Stage checks (run on submit by the engine): one small class per check type.

CHECK_TYPES: dict[str, type[Check]] = {}


def check_type(cls: type[Check]) -> type[Check]:
    CHECK_TYPES[cls.type_name] = cls
    return cls


CheckSeverity = Literal["error", "warn"]


class Check(Base):
    """``severity: error`` (the default) blocks submit with the check's messages; ``warn``
    lets the work go on and stores the messages on the run as QC flags for reviewers."""

    type_name: ClassVar[str]
    kinds: ClassVar[set[str] | None] = None  # class kinds the check applies to
    rule: str
    class_: Key | None = Field(default=None, alias="class")
    severity: CheckSeverity = "error"

    def describe(self) -> str:
        count = getattr(self, "count", None)
        parts = [self.type_name]
        if self.class_:
            parts.append(f"of {self.class_}")
        if count is not None:
            parts.append(f"({count})")
        return " ".join(parts)


@check_type
class MinCount(Check):
    type_name = "min_count"
    rule: Literal["min_count"]
    class_: Key = Field(alias="class")
    count: int = Field(ge=0)


@check_type
class MaxCount(Check):
    type_name = "max_count"
    rule: Literal["max_count"]
    class_: Key = Field(alias="class")
    count: int = Field(ge=0)


@check_type
class RequiredAttributes(Check):
    type_name = "required_attributes"
    rule: Literal["required_attributes"]


@check_type
class InsideFrame(Check):
    type_name = "inside_frame"
    kinds = GEOMETRY_KINDS
    rule: Literal["inside_frame"]


@check_type
class NoOverlap(Check):
    type_name = "no_overlap"
    kinds = {"segment", "box", "polygon"}
    rule: Literal["no_overlap"]
    class_: Key = Field(alias="class")


@check_type
class AllSamplesAnnotated(Check):
    type_name = "all_samples_annotated"
    rule: Literal["all_samples_annotated"]


# Stages: one model per kind; fields a kind does not have are refused by name.


class StageBase(Base):
    key: Key
    name: str | None = None
    kind: StageKind
    depends_on: list[Key] = []
    when: Any = None  # parsed into a Condition
    params: StageParams = StageParams()
    checks: list[Any] = []  # parsed into Check objects
    classes: list[Key] = []

    @property
    def title(self) -> str:
        return self.name or self.key.replace("_", " ")


class AnnotateStage(StageBase):
    kind: Literal["annotate"]
    classes: list[Key] = Field(min_length=1)


class ConsensusStage(StageBase):
    kind: Literal["consensus"]
    classes: list[Key] = Field(min_length=1)
    annotators: int = Field(ge=2, le=20)
    agreement: float = Field(default=0.8, ge=0, le=1)


class ReviewStage(StageBase):
    kind: Literal["review"]
    reviews: list[Key] = Field(min_length=1)
    # The reviewer may correct the reviewed stages' annotations in place (update, delete),
    # each fix recorded before/after (tasks.services.review.review_fix_run).
    allow_fixes: StrictBool = False


class LogicStage(StageBase):
    """Routes each task by its rules. Without dependencies it routes at intake, when the
    task is created (by batch, dataset or random sample)."""

    kind: Literal["logic"]
    rules: list[Any] = []  # parsed into Rule objects
    else_: Key = Field(alias="else")


STAGE_KINDS: dict[str, type[StageBase]] = {
    "annotate": AnnotateStage,
    "consensus": ConsensusStage,
    "review": ReviewStage,
    "logic": LogicStage,
}
Stage = AnnotateStage | ConsensusStage | ReviewStage | LogicStage


class Document(Base):
    """The top level, with items left raw for per-item parsing."""

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    taxonomy: list[Any] = []
    stages: list[Any] = Field(min_length=1)


@dataclass
class BlueprintSpec:
    name: str
    description: str
    taxonomy: list[LabelClass]
    stages: list[Stage]
    classes: dict[str, LabelClass] = field(default_factory=dict)
    by_key: dict[str, Stage] = field(default_factory=dict)
    upstream: dict[str, set[str]] = field(default_factory=dict)
    columns: dict[str, int] = field(default_factory=dict)
    # The stages as written (same positions as ``stages``): validation reads what it can
    # from an item that failed to parse, so one error hides no other.
    raw_stages: list[Any] = field(default_factory=list)

    def stage(self, key: str) -> Stage:
        return self.by_key[key]

    def downstream_of(self, key: str) -> set[str]:
        return {k for k, ups in self.upstream.items() if key in ups}


# --- parsing ------------------------------------------------------------------------------


def as_list(value: Any) -> list:
    """A raw list, or nothing (what can be read of an item that failed to parse)."""
    return value if isinstance(value, list) else []


def _parse_kind(raw: Any, path: str, out: Collector, registry: dict, field_name: str, what: str):
    if not isinstance(raw, dict):
        out.add(path, f"must be a mapping with a “{field_name}”")
        return None
    name = raw.get(field_name)
    if name is None:
        out.add(join(path, field_name), f"is required (one of {', '.join(registry)})")
        return None
    if not isinstance(name, str) or name not in registry:
        shown = name if isinstance(name, str | int | float) else type(name).__name__
        out.add(join(path, field_name), f"unknown {what} “{shown}”; known: {', '.join(registry)}")
        return None
    return out.model(registry[name], raw, path)


def _parse_stage(raw: Any, path: str, out: Collector) -> Stage | None:
    stage = _parse_kind(raw, path, out, STAGE_KINDS, "kind", "stage kind")
    # Parse the parts even when the stage itself is broken, so that every error shows.
    source = raw if isinstance(raw, dict) else {}
    when = source.get("when")
    when = parse_condition(when, join(path, "when"), out) if when is not None else None
    raw_checks = as_list(source.get("checks"))
    checks = [
        _parse_kind(c, join(path, "checks", j), out, CHECK_TYPES, "rule", "check")
        for j, c in enumerate(raw_checks)
    ]
    raw_rules = as_list(source.get("rules"))
    rules = [
        _parse_kind(r, join(path, "rules", j), out, RULE_TYPES, "match", "rule type")
        for j, r in enumerate(raw_rules)
    ]
    if stage is None:
        return None
    stage.when, stage.checks = when, checks
    if isinstance(stage, LogicStage):
        stage.rules = rules
    return stage


def parse(definition: Any, out: Collector) -> BlueprintSpec | None:
    """Structure pass: every class and stage on its own, so one bad item hides no other."""
    if not isinstance(definition, dict):
        out.add("", "the document must be a mapping with name, taxonomy and stages")
        return None
    document = out.model(Document, definition, "")
    raw_taxonomy = definition.get("taxonomy")
    raw_stages = definition.get("stages")
    taxonomy = [
        out.model(LabelClass, raw, join("taxonomy", i))
        for i, raw in enumerate(raw_taxonomy if isinstance(raw_taxonomy, list) else [])
    ]
    stages = [
        _parse_stage(raw, join("stages", i), out)
        for i, raw in enumerate(raw_stages if isinstance(raw_stages, list) else [])
    ]
    name = document.name if document else str(definition.get("name") or "")
    description = document.description if document else ""
    raw = list(raw_stages) if isinstance(raw_stages, list) else []
    # None marks an item that failed to parse; check() then returns no spec at all.
    return BlueprintSpec(
        name,
        description,
        cast(list[LabelClass], taxonomy),
        cast(list[Stage], stages),
        raw_stages=raw,
    )
