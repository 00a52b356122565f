"""The server API a tenant's back end calls: rosters, events, presence, progress, export, erasure.

HTTP routes (Starlette), their pydantic bodies and OpenAPI document, the back
office the routes call, and export and erasure in a module of their own. It may
import the session layer, the backends, the integrations (mail), the domain and
``auth``; it never imports the edge or the command handlers.
"""
