"""pytest hooks of pytest-promotion (placeholder while the core is written)."""
