"""Other processors the server hands data to: e-mail, video (OpenTok), error reports (Sentry).

Each minimises what it passes on. They may import the domain, the backends
(the shared Redis client), the session layer (the trainers' summary reads the
cohort table) and the runtime leaves (``classroom.config``); never the edge, the
handlers or the server API.
"""
