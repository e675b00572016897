"""A generated control-plane token is one a command line can take as `--token X`."""

from __future__ import annotations

import secrets

import pytest

from emulator import _control


def test_a_token_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """token_urlsafe's alphabet has "-": 1 start in 64 gave a token `ctl --token` read as an
    option. The generator draws again until the first character is not "-"."""
    drawn = iter(["-starts-with-a-dash", "--two", "fine-token"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(drawn))
    assert _control.new_token() == "fine-token"


def test_tokens_are_fresh_and_long() -> None:
    tokens = {_control.new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(len(t) == len(secrets.token_urlsafe(24)) and t[0] != "-" for t in tokens)
