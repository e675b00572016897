"""emulator: lands with its own issue."""
