"""Oblivious transfer for the dealerless two-party mode: base OTs (base_ot.py), IKNP OT
extension (iknp.py) and OT-based multiplication of private values (cot_mul.py)."""
