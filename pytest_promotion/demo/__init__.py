"""The embedded demo target: an HTTPS service on loopback with its own CA, so that
``make promote-dev`` runs real health checks (verified TLS, /health, certificate expiry)
on a fresh machine with nothing deployed."""

from __future__ import annotations

from .service import DemoService

__all__ = ["DemoService"]
