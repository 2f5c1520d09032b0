"""The frames app/wsproto.py writes at once (send_now) are byte for byte websockets' own."""

import pytest
from websockets.protocol import State
from websockets.server import ServerProtocol

from app.wsproto import text_frame


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_text_frame_is_what_websockets_writes(size):
    text = ("é€" * size)[:size]  # multi-byte characters: the length is counted in bytes
    server = ServerProtocol(state=State.OPEN)
    server.send_text(text.encode())
    assert text_frame(text) == b"".join(server.data_to_send())
    assert text_frame(text) is text_frame(text)  # built once per message
