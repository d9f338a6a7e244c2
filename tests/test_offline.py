"""No test reaches a model hub or writes outside the session's temp folder (set in conftest.py)."""
import os
import socket
import tempfile
from pathlib import Path

import pytest
from pytest_socket import SocketConnectBlockedError

from longrag.config import EncoderConfig
from longrag.errors import ModelNotFoundError
from longrag.encoders.weights import resolve_encoder
from longrag.files import cache_dir


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_hub_access_is_off_for_every_library():
    import huggingface_hub.constants

    assert os.environ["HF_HUB_OFFLINE"] == "1" and huggingface_hub.constants.HF_HUB_OFFLINE
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("18.239.50.80", 443), timeout=5)  # an address of huggingface.co


def test_an_unknown_model_fails_without_the_network():
    with pytest.raises(ModelNotFoundError):
        resolve_encoder(EncoderConfig(model="sentence-transformers/not-packaged-anywhere").model)


def test_caches_and_home_are_inside_the_session_temp_folder():
    session = Path(tempfile.gettempdir())
    for path in (cache_dir(), Path.home(), Path(os.environ["HF_HOME"])):
        assert path.resolve().is_relative_to(session.resolve()), path
