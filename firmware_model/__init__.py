"""The pump itself: an exact, deterministic model on a virtual clock (issue #3).

Imports nothing from the other packages, not even `protocol`.
"""
