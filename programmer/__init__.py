"""The programmer library and `pump-programmer` CLI (issue #5 onwards).

Today the CLI offers `decode`, a frame inspector for protocol v1.
"""
