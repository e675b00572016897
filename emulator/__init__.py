"""The emulator runtime: clock, transports, persistence and control plane (issue #4 onwards).

Today it offers `pump-emulator demo`, an in-memory walk through a protocol v1 session.
"""
