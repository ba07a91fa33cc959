"""The lowering's one error type (its own module so that every lowering module can
raise it without importing the Lowerer)."""


class CompileError(Exception):
    """A program spu-lite cannot compile; the message names the primitive and source line."""
