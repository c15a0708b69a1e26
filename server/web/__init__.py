"""The page in the browser (docs/web.md): the host's address space over a WebSocket."""

from server.web.hello import EFFECTS_NOTICE, effect_messages, hello_messages
from server.web.messages import MessageError, decode, encode
from server.web.server import WebReply, WebServer
from server.web.watch import Watch

__all__ = ["WebServer", "WebReply", "MessageError", "decode", "encode", "hello_messages",
           "effect_messages", "EFFECTS_NOTICE", "Watch"]
