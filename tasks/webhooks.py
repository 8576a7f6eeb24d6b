"""Delivery callbacks: a signed JSON POST per delivery, sent by an RQ job on `webhooks`
with retries and exponential backoff over hours; every attempt is recorded.

Attempts are numbered (the job's second argument) and each is made once: a job whose
attempt is already recorded does nothing. The delivery's own backoff is the only thing that
schedules a next attempt — also after an attempt crashed or its worker was lost, when the
failure callback records it and schedules the next — so running a failed attempt's job
again ("retry failed", ``STAGECRAFT_RETRY_LOST_JOBS``, ``rq requeue``) can never start a
second chain of attempts (duplicate POSTs, the attempt budget used twice as fast)."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from core.addresses import not_public, resolves_private
from core.exceptions import ApplicationError
from core.jobs import enqueue

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Stagecraft-Signature"
CANCELLED = "task deleted"  # the last attempt of a delivery whose task was deleted


class _PeerChecked:
    """Refuses to talk to a non-public peer, checked on the connected socket itself (so a
    DNS answer that changed since the first check cannot reach an internal address)."""

    def connect(self):
        super().connect()
        if not settings.STAGECRAFT_ALLOW_PRIVATE_CALLBACKS and not_public(
            self.sock.getpeername()[0]
        ):
            self.sock.close()
            raise OSError("refused: the callback address is not public")


class _HTTPConnection(_PeerChecked, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_PeerChecked, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_HTTPSConnection, req, context=self._context)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect is an answer (3xx), never followed


_opener = urllib.request.build_opener(_NoRedirects, _HTTPHandler, _HTTPSHandler)


def check_callback_url(url: str) -> None:
    """http(s) only; private and loopback addresses only when the setting allows them."""
    try:
        parsed = urlparse(url)
        hostname = parsed.hostname
    except ValueError:
        raise ApplicationError(
            "callback_url is not a valid address.", field="callback_url"
        ) from None
    if parsed.scheme not in {"http", "https"} or not hostname:
        raise ApplicationError("callback_url must be an http(s) address.", field="callback_url")
    if not settings.STAGECRAFT_ALLOW_PRIVATE_CALLBACKS and resolves_private(hostname):
        raise ApplicationError(
            "callback_url points at a private or loopback address.", field="callback_url"
        )


def sign(body: bytes) -> str:
    """``sha256=<hex HMAC of the body>`` with the deployment's webhook secret."""
    secret = settings.STAGECRAFT_WEBHOOK_SECRET.encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def cancel_callbacks(task_ids) -> int:
    """The deliveries of deleted tasks still to be sent are never sent: each is marked
    failed with a last attempt that says why (the task's history is gone with it, the
    delivery stays until the purge). Jobs already queued find it failed and do nothing.
    Returns how many were cancelled."""
    from .models import Delivery, DeliveryAttempt

    pending = list(
        Delivery.objects.filter(task_id__in=task_ids, callback=Delivery.Callback.PENDING)
        .select_for_update()
        .values_list("pk", "task__callback_url")
    )
    if not pending:
        return 0
    Delivery.objects.filter(pk__in=[pk for pk, _ in pending]).update(
        callback=Delivery.Callback.FAILED
    )
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(delivery_id=pk, url=url[:1000], error=CANCELLED) for pk, url in pending
    )
    return len(pending)


def queue_callback(delivery) -> None:
    enqueue(
        "webhooks",
        send_callback_job,
        delivery.pk,
        1,
        job_id=f"delivery-{delivery.pk}",
        on_failure=send_callback_failed,
    )


def send_callback_job(delivery_id: int, attempt: int | None = None) -> str:
    """Attempt number ``attempt``; a failure schedules the next one (backoff) until attempts
    run out. (``None``: a job queued before attempts were numbered.)"""
    from .models import Delivery, DeliveryAttempt

    delivery = Delivery.objects.select_related("task").filter(pk=delivery_id).first()
    if delivery is None or delivery.callback != Delivery.Callback.PENDING:
        return "nothing to send"
    if delivery.task.deleted_at is not None:  # deleted after this job was queued
        Delivery.objects.filter(pk=delivery.pk).update(callback=Delivery.Callback.FAILED)
        return "the task was deleted"
    if _attempt_made(delivery, attempt):
        return f"attempt {attempt} was already made"
    url = delivery.task.callback_url
    body = json.dumps(delivery.payload, cls=DjangoJSONEncoder, sort_keys=True).encode()
    started = time.monotonic()
    status_code, error = None, ""
    try:
        check_callback_url(url)  # again at send time: DNS may have changed
        request = urllib.request.Request(  # noqa: S310 — http(s) checked above
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(body),
                "X-Stagecraft-Delivery": str(delivery.pk),
                "User-Agent": "Stagecraft-Webhook/1",
            },
        )
        with _opener.open(request, timeout=settings.STAGECRAFT_WEBHOOK_TIMEOUT) as reply:
            status_code = reply.status
    except urllib.error.HTTPError as exc:
        status_code, error = exc.code, f"HTTP {exc.code}"
    except ApplicationError as exc:
        error = exc.message
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # Generic words only: details would map the network behind the receiver.
        refused = "not public" in str(getattr(exc, "reason", exc))
        error = "refused: the callback address is not public" if refused else "no answer"
    duration = int((time.monotonic() - started) * 1000)
    DeliveryAttempt.objects.create(
        delivery=delivery,
        url=url[:1000],
        status_code=status_code,
        error=error,
        duration_ms=duration,
    )
    if status_code is not None and 200 <= status_code < 300:
        Delivery.objects.filter(pk=delivery.pk).update(callback=Delivery.Callback.SUCCEEDED)
        return "delivered"
    return _after_failed_attempt(delivery)


def _after_failed_attempt(delivery) -> str:
    """The next attempt after the backoff interval, or failed when attempts ran out."""
    from .models import Delivery

    attempts = delivery.attempts.count()
    intervals = settings.STAGECRAFT_WEBHOOK_RETRY_INTERVALS
    if attempts > len(intervals):
        Delivery.objects.filter(pk=delivery.pk).update(callback=Delivery.Callback.FAILED)
        logger.warning("delivery %s failed after %d attempts", delivery.pk, attempts)
        return "failed"
    _schedule_retry(delivery.pk, intervals[attempts - 1], attempts + 1)
    return f"retrying in {intervals[attempts - 1]} s"


def _attempt_made(delivery, attempt: int | None) -> bool:
    """Whether attempt number ``attempt`` is already recorded (it ran, or was lost)."""
    return attempt is not None and delivery.attempts.count() >= attempt


def send_callback_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: an attempt crashed or its worker was lost (queues/recovery.py).
    It counts as a failed attempt (the receiver may or may not have had it) and the backoff
    goes on, instead of the delivery staying "sending" for good. The next attempt is
    scheduled here, so the job says in its meta that it must not be retried as well (and
    if it is run again anyway, its attempt is recorded and it does nothing)."""
    from core.jobs import failure_reason
    from queues.recovery import RETRIES_ITSELF

    from .models import Delivery, DeliveryAttempt

    attempt = job.args[1] if len(job.args) > 1 else None
    delivery = Delivery.objects.select_related("task").filter(pk=job.args[0]).first()
    if (
        delivery is not None
        and delivery.callback == Delivery.Callback.PENDING
        and delivery.task.deleted_at is None  # a deleted task's delivery is never retried
    ):
        if not _attempt_made(delivery, attempt):  # else it stopped after recording its answer
            DeliveryAttempt.objects.create(
                delivery=delivery,
                url=delivery.task.callback_url[:1000],
                error=f"the attempt stopped ({failure_reason(exc_type)})"[:500],
            )
        _after_failed_attempt(delivery)
    job.meta[RETRIES_ITSELF] = True
    job.save_meta()


def _schedule_retry(delivery_id: int, seconds: int, attempt: int) -> None:
    from datetime import timedelta

    import django_rq

    from core.jobs import jobs_run_inline

    if jobs_run_inline():
        return  # without Redis there is nobody to retry later; the delivery stays pending
    # Scheduled from inside a job: enqueue now, not on some transaction's commit.
    queue = django_rq.get_queue("webhooks", commit_mode="auto")
    from rq import Callback

    on_failure = Callback(send_callback_failed)
    if seconds <= 0:
        queue.enqueue(send_callback_job, delivery_id, attempt, on_failure=on_failure)
    else:
        queue.enqueue_in(
            timedelta(seconds=seconds),
            send_callback_job,
            delivery_id,
            attempt,
            on_failure=on_failure,
        )
