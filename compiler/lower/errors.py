"""The lowering's one error type (its own module so that every lowering module can
raise it without importing the Lowerer)."""


class CompileError(Exception):
    """A program spu-lite cannot compile; the message names the primitive and source line."""


class FixedPointWarning(UserWarning):
    """A value of this call overflowed the fixed-point range or left an approximation's
    domain, or a constant of the program reads 0 at its format: the results may be wrong
    (spu.check says more). Re-exported as spu.FixedPointWarning."""
