"""Search at scale (issue 15, ``tasks.search``): the trigram indexes are asked only for the
search text's uncommon trigrams, and the results are exactly ``icontains``'s on the name or
the description whatever the sample says."""

import pytest
from django.db import connection
from django.db.models import Q

from tasks import search, services
from tasks.models import Task
from tasks.selectors import task_list_for_user
from tests.tasks.test_list_scale import plan_as_at_scale

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes: PostgreSQL"),
]

ODD = [
    ("Straße 12", "überprüft"),
    ("50%_off scene", ""),
    ("a_b", "back-to-back"),
    ("shelf", "A blue CUP near scene 4242"),
    ("x", "12"),
]


@pytest.fixture
def scenes(manager, project, monkeypatch):
    """400 "scene N take M" tasks (so "SCE", "CEN", "ENE" are in every name) and some odd
    ones; the trigram sample taken from them (the bar for common lowered to this size)."""
    items = [{"name": f"scene {i} take {i % 7}"} for i in range(400)]
    items += [{"name": name, "description": text} for name, text in ODD]
    services.task_create_many(actor=manager, project=project, items=items)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_task")  # reltuples: the sample's size guess
    monkeypatch.setattr(search, "COMMON_POSTINGS", 4)  # as 1% of 405 tasks
    monkeypatch.setattr(search, "_cached", None)
    known = search.sample(refresh=True)
    assert known is not None and known.rows == 405
    return known


def names(user, text: str) -> list[str]:
    tasks = task_list_for_user(user=user, filters={"search": text})
    return sorted(tasks.values_list("name", flat=True))


def plain(text: str) -> list[str]:
    found = Task.objects.filter(Q(name__icontains=text) | Q(description__icontains=text))
    return sorted(found.values_list("name", flat=True))


def test_ids_of_deleted_tasks_make_the_sample_draw_again(manager, project, monkeypatch):
    """Three ids in four are of deleted tasks: the first draw finds too few live ones, the
    second draws as many more as that share says, and the live names' trigrams count."""
    from tasks import batch

    made = services.task_create_many(
        actor=manager,
        project=project,
        items=[{"name": f"scene {i}" if i % 4 == 0 else f"zebra {i}"} for i in range(400)],
    )
    zebras = [t.pk for t in made if t.name.startswith("zebra")]
    batch.task_batch_delete(actor=manager, selection=Task.objects.filter(pk__in=zebras))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tasks_task")
    monkeypatch.setattr(search, "SAMPLE_ROWS", 100)
    monkeypatch.setattr(search, "COMMON_POSTINGS", 50)  # 100 live scenes: "SCE" is common
    monkeypatch.setattr(search, "_cached", None)
    known = search.sample(refresh=True)
    assert known is not None and known.rows > 100  # drew again
    assert "SCE" in known.common("name") and "ZEB" not in known.common("name")


def test_common_trigrams_are_measured_from_the_sample(scenes):
    assert {"SCE", "CEN", "ENE", "TAK", "AKE"} <= scenes.common("name")
    assert "424" not in scenes.common("name")
    assert scenes.common("description") == set()  # five descriptions of 405: none common
    assert search.trigrams("Scene 4242, ß-ok!") == ["SCE", "CEN", "ENE", "424", "242"]


@pytest.mark.parametrize(
    "text",
    [
        "scene 42",
        "SCENE 4",
        "scene",
        "take 3",
        "ene sce",
        "4242",
        "cup",
        "straße",
        "ÜBER",
        "50%_",
        "a_b",
        "k-to-b",
        "12",
        "1",
        "%",
        "_",
        "zebra",
        "scene 399 take 0",
    ],
)
def test_results_are_icontains_on_the_name_or_the_description(scenes, admin_user, text):
    assert names(admin_user, text) == plain(text)


def test_known_answers(scenes, manager):
    assert names(manager, "scene 4242") == ["shelf"]  # in the description only
    assert names(manager, "scene 39") == [f"scene {i} take {i % 7}" for i in (39, *range(390, 400))]
    assert names(manager, "STRASSE") == []  # PostgreSQL's UPPER keeps ß
    assert names(manager, "straße") == ["Straße 12"]


def test_the_index_is_asked_for_the_uncommon_trigrams_only(scenes, admin_user):
    tasks = task_list_for_user(user=admin_user, filters={"search": "scene 4242"}).order_by()
    sql, params = tasks.values("pk").query.sql_with_params()
    # Name: its two uncommon trigrams; description (nothing common there): its first four.
    likes = [p for p in params if isinstance(p, str) and p.startswith("%")]
    assert likes == ["%424%", "%242%", "%SCE%", "%CEN%", "%ENE%", "%424%"], likes
    plan = plan_as_at_scale(tasks)
    name_scan = plan[plan.index("task_name_trgm_idx") :].split("\n")[1]
    assert "'%424%'" in name_scan and "'%242%'" in name_scan, plan
    assert "SCE" not in name_scan, plan
    assert "strpos" in plan, plan  # the whole text is checked on each candidate


def test_a_text_of_common_trigrams_only_is_not_read_from_the_name_index(scenes, admin_user):
    tasks = task_list_for_user(user=admin_user, filters={"search": "ene sce"}).order_by()
    sql, params = tasks.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "task_name_trgm_idx" not in plan, plan
    assert names(admin_user, "ene sce") == []
