"""Set-based deletion that cannot forget a table.

Django's collector fetches every related row into Python before deleting; for 100,000 tasks
with their runs, annotations and events that is millions of objects. ``delete_set`` instead
walks the model's relations (the same ones the collector would follow, derived from
``_meta``, never a hand-kept list) and issues one statement per related table:
``CASCADE`` children are deleted first (recursively), ``SET_NULL`` references are cleared,
and ``PROTECT``/``RESTRICT`` references refuse the deletion with a clear error.

``delete_leaves`` deletes only the child rows nothing else refers to (a table no foreign key
points at): deleting those fires no foreign-key trigger, so it costs little whatever the
count — a deletion that must be quick takes those at once and leaves the rest to a purge
(tasks.services.deletion).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db import models
from django.db.models import QuerySet

from .exceptions import ApplicationError


def _relations(model: type[models.Model]):
    """Every relation whose rows point at ``model`` (reverse foreign keys, one-to-ones and
    the rows of auto-created many-to-many tables), as the collector finds them."""
    return [
        field
        for field in model._meta.get_fields(include_hidden=True)
        if field.auto_created
        and not field.concrete
        and (field.one_to_many or field.one_to_one)
        and field.remote_field is not None
    ]


def _is_leaf(model: type[models.Model]) -> bool:
    return all(r.field.remote_field.on_delete is models.DO_NOTHING for r in _relations(model))


def delete_leaves(
    model: type[models.Model], *, keys: Any, keep: Collection[type[models.Model]] = ()
) -> list[str]:
    """Delete the ``CASCADE`` child rows of the ``model`` rows whose primary keys are
    ``keys`` when no other table refers to the child's table; refuse (as ``delete_set``
    would) when a ``PROTECT``/``RESTRICT`` reference holds one of them. ``keep``: child
    models left for ``delete_set`` all the same (their readers filter the parent). Returns
    the labels of the child tables left for ``delete_set``. Run it inside a transaction."""
    left = []
    for relation in _relations(model):
        child, field = relation.related_model, relation.field
        on_delete = field.remote_field.on_delete
        rows = child._base_manager.filter(**{f"{field.name}__in": keys})
        if on_delete in (models.PROTECT, models.RESTRICT):
            if rows.exists():
                raise ApplicationError(
                    f"{str(model._meta.verbose_name_plural).capitalize()} are still referred to by "
                    f"{child._meta.verbose_name_plural}; remove those first."
                )
        elif (
            on_delete in (models.CASCADE, models.DB_CASCADE)
            and _is_leaf(child)
            and child not in keep
        ):
            rows._raw_delete(rows.db)
        elif on_delete is not models.DO_NOTHING:
            left.append(child._meta.label)
    return left


def clear_references(model: type[models.Model], *, keys: Any) -> list[str]:
    """Clear the ``SET_NULL`` references to the ``model`` rows whose primary keys are
    ``keys`` now, as their deletion will (a post pinned to a deleted task stops linking to
    it before the purge). Clearing a reference fires no foreign-key check of the parent
    table. Returns the labels of the tables changed."""
    cleared = []
    for relation in _relations(model):
        field = relation.field
        if field.remote_field.on_delete in (models.SET_NULL, models.DB_SET_NULL):
            relation.related_model._base_manager.filter(**{f"{field.name}__in": keys}).update(
                **{field.name: None}
            )
            cleared.append(relation.related_model._meta.label)
    return cleared


def delete_set(queryset: QuerySet, *, using: str = "default", keys: Any = None) -> int:
    """Delete every row of ``queryset`` and what depends on it; returns the rows deleted
    from ``queryset``'s own table. Run it inside a transaction. ``keys``: what the child
    rows' ``<fk>__in`` is matched against when the caller already holds exactly the rows'
    primary keys (a list, or an expression such as an array of ids); by default the
    queryset's own ``pk``s, a subquery each child statement runs again."""
    return _delete(queryset.order_by(), using, path=(queryset.model,), keys=keys)


def _delete(queryset: QuerySet, using: str, path: tuple, keys: Any = None) -> int:
    model = queryset.model
    if keys is None:
        keys = queryset.values("pk")
    for relation in _relations(model):
        child = relation.related_model
        field = relation.field
        on_delete = field.remote_field.on_delete
        if on_delete is models.DO_NOTHING:
            continue
        rows = child._base_manager.filter(**{f"{field.name}__in": keys})
        if on_delete in (models.CASCADE, models.DB_CASCADE):
            if child in path:
                # A self-reference (a comment's replies): the rows belong to the same parent
                # rows and go in the same statement; deferred constraints check the rest.
                continue
            _delete(rows, using, path=(*path, child))
        elif on_delete in (models.SET_NULL, models.DB_SET_NULL):
            rows.update(**{field.name: None})
        elif on_delete in (models.PROTECT, models.RESTRICT):
            if rows.exists():
                raise ApplicationError(
                    f"{model._meta.verbose_name_plural.capitalize()} are still referred to by "
                    f"{child._meta.verbose_name_plural}; remove those first."
                )
        else:
            raise ApplicationError(
                f"Cannot delete {model._meta.verbose_name_plural} in a batch: "
                f"{child._meta.label}.{field.name} uses {on_delete.__name__}."
            )
    return queryset._raw_delete(using)
