from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken


@extend_schema(
    responses=inline_serializer("Token", {"token": serializers.CharField()}),
    description="Exchange a username and password for an API token "
    "(send it as `Authorization: Token <token>`).",
)
class TokenView(ObtainAuthToken):
    # Accept JSON and forms only; the browsable renderer adds nothing here.
    pass
