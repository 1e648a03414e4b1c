"""pytest-promotion: promotion gates as pytest checks.

Run ``pytest --env=staging`` and the plugin selects the gates that apply to staging,
records what each measured, and decides ``promote``, ``block`` or ``rollback``.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
