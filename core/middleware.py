from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.template.defaultfilters import filesizeformat
from django.utils.cache import add_never_cache_headers, patch_vary_headers


class RejectNulMiddleware:
    """NUL characters cannot be stored or searched (PostgreSQL refuses them): a request whose
    query or form values carry one is answered 400 at once, never a 500 later."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for values in (request.GET, request.POST if request.method == "POST" else {}):
            for key, items in getattr(values, "lists", lambda: [])():
                if "\x00" in key or any("\x00" in v for v in items):
                    message = "Text may not contain NUL characters."
                    if request.path.startswith("/api/"):
                        return JsonResponse({"detail": message}, status=400)
                    return HttpResponseBadRequest(message)
        return self.get_response(request)


class UploadSizeLimitMiddleware:
    """A request body larger than ``STAGECRAFT_MAX_UPLOAD_BYTES`` is answered 413 with a
    readable message before anything reads it (no half-spooled upload on disk)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.STAGECRAFT_MAX_UPLOAD_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit and length > limit:
            message = (
                f"The upload is {filesizeformat(length)}; the most this server takes in one "
                f"request is {filesizeformat(limit)}. Split it, or import a folder on the "
                "server instead."
            )
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class VaryOnHtmxMiddleware:
    """Pages answer htmx with a fragment and everyone else with the whole page, at the same
    URL (``hx-push-url`` puts it in the history). ``Vary: HX-Request`` keeps the browser's
    cache from serving the fragment as the page when someone comes Back to that URL."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        patch_vary_headers(response, ("HX-Request",))
        return response


class HealthCheckMiddleware:
    """``GET /healthz`` (database, Redis, storage) and ``GET /healthz/workers`` (a living
    worker on every queue): 200 or 503 with a JSON body, answered first in the chain —
    before the host check (a proxy or an orchestrator probes by IP address), the HTTPS
    redirect, sessions and login."""

    PATHS = {"/healthz", "/healthz/", "/healthz/workers", "/healthz/workers/"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info not in self.PATHS:
            return self.get_response(request)
        if request.method not in {"GET", "HEAD"}:
            response = JsonResponse({"detail": "Use GET."}, status=405)
            response["Allow"] = "GET, HEAD"
            return response
        from . import health

        if request.path_info.startswith("/healthz/workers"):
            healthy, queues = health.worker_health()
            body: dict = {"status": "ok" if healthy else "no worker", "queues": queues}
        else:
            healthy, checks = health.web_health()
            body = {"status": "ok" if healthy else "failing", "checks": checks}
        response = JsonResponse(body, status=200 if healthy else 503)
        add_never_cache_headers(response)
        return response
