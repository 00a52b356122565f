"""Bounds on the live state a client can grow (protocol sections 7 and 13).

Every node keeps each session's state in memory and sends the marks of the
current screen whole in every ``joined``, so whatever a client may add to it is
bounded here. ``classroom.domain.events`` refuses an event that would pass a
bound (``bad_request``, before anything is stored), and
``classroom.domain.state`` enforces the same bounds when it folds records in,
so two racing publishes that were both checked against the same state still
cannot take a node past them: the later record is ignored, on every node alike.

The numbers are sized for a real lesson, a trainer and about 30 students:

- ``ANNOTATIONS_PER_PERSON_PER_SCREEN`` (50): a student circles, underlines or
  writes a short answer on a screen in a handful of strokes; a handwritten
  sentence is 20 to 40. Fifty leaves room for that, and removing a mark frees
  its place. It also keeps one person from taking a whole screen's budget: it
  takes ten people at the limit to fill one.
- ``ANNOTATIONS_PER_SCREEN`` (500): thirty students at about fifteen marks each
  plus the trainer's; a screen with more is no longer readable anyway.
- ``ANNOTATIONS_PER_SESSION`` (5000): ten screens filled to the brim, or forty
  screens on which everyone left a few marks.
- ``ANNOTATION_BYTES_PER_SCREEN`` (1 MiB of shape JSON): the ``joined`` of a
  member on that screen carries all of it in one frame, and 1 MiB is the
  default bound of a client's send queue; 500 marks of 2 KiB each, and a
  freehand stroke of 100 points is about 1.5 KiB.
- ``ANNOTATION_BYTES_PER_SESSION`` (8 MiB of shape JSON): the memory one
  session may hold on every node that serves it (several times that in Python
  objects); 5000 marks of 1.6 KiB on average.
- ``SHAPE_MAX_BYTES`` (16 KiB) per mark, unchanged, and ``SHAPE_MAX_POINTS``
  (1000) in a shape's ``points`` list: a pen sampled at 60 Hz draws a few
  hundred points per stroke; without this bound a 16 KiB shape of tiny points
  (``[0,0],``) would unfold into some 2700 Python lists.
- ``SHAPE_MAX_DEPTH`` (32): how deep objects and lists may nest in a shape (the
  shape itself is level 1); a drawing needs three or four. Every frame that
  carries a shape (``event``, ``joined``, ``history``) nests it four levels
  deeper, and the JSON encoder stops at 255 levels: without this bound a 2 KB
  shape nested 253 deep was stored, but its ``event`` could not be encoded for
  any JSON member, and every later ``joined`` and ``history`` that held it
  failed too, closing that member's connection.
- ``POLL_IDS_REMEMBERED`` (200): a poll id may not be reused while it is among
  the last 200 opened in the session (a poll every minute of a three-hour
  lesson is 180); an older one may be used again. Polls are never refused for
  their number.

Hands and poll answers need no bound of their own: each is one per student
(``pid``), and only the tenant's back end mints students.
"""

from __future__ import annotations

SHAPE_MAX_BYTES = 16 * 1024
SHAPE_MAX_POINTS = 1000
SHAPE_MAX_DEPTH = 32
ANNOTATIONS_PER_PERSON_PER_SCREEN = 50
ANNOTATIONS_PER_SCREEN = 500
ANNOTATIONS_PER_SESSION = 5000
ANNOTATION_BYTES_PER_SCREEN = 1024 * 1024
ANNOTATION_BYTES_PER_SESSION = 8 * 1024 * 1024
POLL_IDS_REMEMBERED = 200
