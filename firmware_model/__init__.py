"""firmware_model: lands with its own issue."""
