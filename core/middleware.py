from django.http import HttpResponseBadRequest, JsonResponse


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
