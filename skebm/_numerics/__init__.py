"""Numerics written once over an array namespace ``xp`` (NumPy, torch, ...).

What the array API standard lacks (random draws from a generator, stable special
functions) comes from the backend's ``primitives`` module through
:func:`skebm._backends.primitives_for`. Nothing here imports torch.
"""
