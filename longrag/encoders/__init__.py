"""Sentence encoders that read long documents: windows, extended positions, late chunking."""
from .base import Encoder, TokenizedText, TransformerEncoder, load_encoder

__all__ = ["Encoder", "TokenizedText", "TransformerEncoder", "load_encoder"]
