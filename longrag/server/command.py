"""`longrag serve`, the command (cli.py adds it to the group). FastAPI and uvicorn load only when it runs."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import click

from ..errors import LongragError


def serve_command(index_help: str, open_index: Callable, friendly: Callable) -> click.Command:
    """The command, given cli.py's help text for --index, its way to open an index and its error handler."""

    @click.command()
    @click.option("--index", "index_names", multiple=True, help=index_help + " Repeat it to serve several (the "
                  "page offers a choice; the first is the default).")
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="Address to listen on. Anything but the loopback lets others on the network reach the "
                       "server: they need its token.")
    @click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
                  help="Port (0: any free one).")
    @click.option("--config", "config_path", type=click.Path(path_type=Path),
                  help="YAML settings (search, generator and ask sections); must match the index's encoder.")
    @click.option("--token-file", type=click.Path(path_type=Path, dir_okay=False),
                  help="Read the sign-in token from this file (its first line) instead of making a new one at "
                       "each start.")
    @click.option("--no-token", is_flag=True,
                  help="Ask no token (only on the loopback: then anyone on this machine can use the server).")
    @click.option("--read-only", is_flag=True,
                  help="Take no uploads and remove nothing: the server only reads the indexes.")
    @click.option("--max-upload", type=click.IntRange(1, 4096), default=32, show_default=True,
                  help="Megabytes one upload may hold (its files together).")
    @friendly
    def serve(index_names, host, port, config_path, token_file, no_token, read_only, max_upload):
        """A web app and HTTP API over one or more indexes: search, ask, read the cited passages in
        place, and upload documents to index.

        Open the printed URL: it carries the sign-in token (as Jupyter's does); the page then keeps
        a cookie instead. Ask a question and click a quote to see the whole document, or a PDF's
        page as it looks, with the cited lines boxed. Files dropped on the page are kept in the
        index's uploads/ folder and indexed one after the other, as `longrag index --add` does. The
        API is under /api (OpenAPI description at /api/openapi.json); send the token as the header
        `Authorization: token …`.
        """
        from .run import check_token, serve as run_server
        from .signin import new_token, read_token_file

        if no_token and token_file:
            raise LongragError("give --token-file or --no-token, not both")
        token = None if no_token else read_token_file(token_file) if token_file else new_token()
        check_token(host, token)  # before any index or model is loaded
        pipelines = [open_index(name, config_path) for name in index_names or (None,)]
        run_server(pipelines, host, port, log=click.echo, token=token, show_token=token_file is None,
                   uploads=not read_only, max_upload=max_upload * 2**20)

    return serve
