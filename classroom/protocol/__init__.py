"""The wire protocol: frame encodings, client commands, the frames we send (errors too), closes.

Pure, like the domain, and below the session layer, because fan-out encodes each
frame once per wire format: the hub needs the codec, so the codec cannot sit with
the command handlers (``classroom.handlers``) that drive the sessions. It may
import ``classroom.domain`` and ``auth``, never a backend, the session layer,
asyncio, Starlette or uvicorn.
"""
