"""The API's JSON renderer: DRF's output, written by orjson (about 5-10x faster than json.dumps
with DRF's encoder on a page of 50 cards)."""

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

_fallback = JSONEncoder()
# Compact, UTF-8, UTC datetimes as "...Z" (what DRF's encoder writes); non-str keys as DRF's
# json.dumps would turn them into strings.
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
# U+2028/U+2029 in UTF-8: escaped as DRF does, so the output is also valid JavaScript.
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)  # pretty: rare
        # What orjson does not know natively (lazy strings, Decimal, ...) DRF's encoder does.
        out = orjson.dumps(data, default=_fallback.default, option=_OPTIONS)
        if b"\xe2\x80" in out:
            for raw, escaped in _LINE_SEPARATORS:
                out = out.replace(raw, escaped)
        return out
