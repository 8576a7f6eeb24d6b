"""The /queues/ page's wording: queue names, empty failed list, recent actions, messages."""

import pytest

from queues import control

pytestmark = pytest.mark.django_db


def test_an_empty_failed_list_says_none(client, admin_user, redis_conn):
    client.force_login(admin_user)
    body = client.get("/queues/").content.decode()
    failed = body[body.index('id="failed-heading"') : body.index('id="log-heading"')]
    assert '<p class="empty">None.</p>' in failed and "<h3>" not in failed
    assert '<th scope="row"><strong>default</strong></th>' in body


def test_recent_actions_count_jobs_only_for_actions_that_move_jobs(client, admin_user, redis_conn):
    control.queue_action(actor=admin_user, name="imports", action="pause")
    control.queue_action(actor=admin_user, name="imports", action="retry-failed")
    client.force_login(admin_user)
    body = client.get("/queues/").content.decode()
    log = body[body.index('id="log-heading"') :]
    assert "root paused <strong>imports</strong></li>" in log
    assert "root retried failed <strong>imports</strong> — 0 jobs</li>" in log
    assert "(0)" not in log


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("pause", "Paused imports: its waiting jobs stay until it is resumed."),
        ("resume", "Resumed imports."),
        ("empty", "Emptied imports: deleted 0 waiting or delayed jobs."),
        ("clean", "Cleaned the history of imports: deleted 0 old jobs."),
        ("retry-failed", "Retried 0 failed jobs on imports. 0 failed jobs remain."),
    ],
)
def test_the_message_says_what_an_action_did_in_words(
    client, admin_user, redis_conn, action, message
):
    client.force_login(admin_user)
    response = client.post(f"/queues/imports/{action}/", follow=True)
    assert message in response.content.decode()
