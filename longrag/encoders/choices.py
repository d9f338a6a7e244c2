"""What an encoder section may name: the one place these names are defined. Plain tuples, so
that config.py checks a configuration without importing torch (the code that acts on each name
imports it from here)."""

# encoder.document_method: truncate and windows read the document in the encoder's own window
# (transformer.py); the others extend its positions to encoder.target_length (long_model.py)
WINDOW_METHODS = ("truncate", "windows")
POSITION_METHODS = ("pi", "gp", "rp")  # learned absolute positions: positions.py
ROPE_METHODS = ("ntk", "dynamic", "selfextend")  # rotary positions: rope_extension.py
DOCUMENT_METHODS = (*WINDOW_METHODS, *POSITION_METHODS, *ROPE_METHODS)
DTYPES = ("float32", "bfloat16", "auto")  # transformer.py's dtype choice
RUNTIMES = ("auto", "torch", "onnx")  # transformer.py's runtime choice (onnx_runtime.py)
