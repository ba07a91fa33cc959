"""Lattice homomorphic encryption (BFV, Microsoft SEAL) for two-party matrix triples:
context.py (parameters, keys, raw coefficient access), matmul.py (Cheetah's coefficient
encoding and the cross-term protocol)."""
