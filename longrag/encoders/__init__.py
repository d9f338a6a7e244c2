"""Sentence encoders that read long documents: windows, extended positions, late chunking."""
from .transformer import TransformerEncoder, load_encoder
from ..types import TokenizedText
from .interface import Encoder

__all__ = ["Encoder", "TokenizedText", "TransformerEncoder", "load_encoder"]
