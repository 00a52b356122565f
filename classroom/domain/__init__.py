"""The domain: what a classroom session is, as pure code with no I/O and no event loop.

Event kinds and who may publish them, the live session state (a reducer over
stored events), participants and their pseudonymous ids, what each role may see
of each person (views), cohort rows, and the one exception every layer refuses a
request with. It may import ``auth`` (identities, roles) and libraries for data
(pydantic, orjson), never asyncio, Starlette, uvicorn, Redis or another
``classroom`` layer, so every rule here is tested without a server.
"""
