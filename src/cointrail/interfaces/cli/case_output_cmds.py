"""Case outputs: ``case report`` (HTML and PDF) and ``case export`` (partner bundles)."""

from __future__ import annotations
