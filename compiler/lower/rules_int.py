"""Lowering rules: integer division, remainder and bitwise operations on secrets."""
from __future__ import annotations
