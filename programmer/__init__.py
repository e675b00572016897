"""programmer: lands with its own issue."""
