"""Model adapters: the built-in ONNX sentence encoder."""
