"""OpenAPI: every operation lists the error statuses it can answer, in the one error shape.

drf-spectacular documents the success responses; the errors come from the kit's own
handling (core.errors), the same for every view, so they are added here by what an
operation has: a login requirement, a body, path or query parameters, an If-Match header.
Schemathesis (`make test`) holds the API to this: any status not listed fails it.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MEANINGS = {
    400: "Malformed request (JSON that does not parse)",
    401: "Not logged in (or, for login, wrong credentials)",
    403: "Not allowed, or the CSRF check failed",
    404: "Not found, or not visible to this user",
    412: "If-Match names an older version",
    413: "Request body too large",
    415: "Unsupported content type",
    422: "Invalid values (`fields` says which)",
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(help_text="per field, a list of messages")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class AutoSchema(SpectacularAutoSchema):
    def error_statuses(self) -> set[int]:
        found = {401}  # no session; the views anyone may call answer it too (login, me)
        if not all(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            found.add(403)
        if self.method in UNSAFE:
            found.add(403)  # CSRF, even where anyone may call
        if self.method in {"POST", "PUT", "PATCH"}:
            found |= {400, 413, 415, 422}
        if "{" in self.path:
            found.add(404)
        parameters = self._get_parameters()
        if any(p["in"] == "query" for p in parameters):
            found.add(422)
        if self._is_list_view():
            found.add(404)  # a page number past the end
        if any(p["in"] == "header" and p["name"] == "If-Match" for p in parameters):
            found.add(412)
        return found

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status in sorted(self.error_statuses()):
            if str(status) not in responses:
                response = self._get_response_for_code(ErrorSerializer, str(status))
                responses[str(status)] = {**response, "description": MEANINGS[status]}
        return responses
