"""The console server: REST API (OpenAPI 3.1), identity, audit and live events over HTTP.

It holds no logic of its own: every handler calls a service in :mod:`console.services` (or a
library below), the same one the CLI calls. ``app/console_setup.py`` builds those services from
the configuration and hands them to :func:`console.api.app.create_app`.
"""
