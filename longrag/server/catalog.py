"""The indexes one server serves, by name (the index folder's name), each with its uploads; the
first is the default. A route names one with `?index=NAME`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from fastapi import HTTPException, Query

from ..errors import InputError
from .jobs import Jobs, Library
from .uploads import UploadFolder


@dataclass
class Entry:
    name: str
    pipeline: object  # a Pipeline
    library: Library | None  # None: read-only


class Catalog:
    def __init__(self, pipelines, jobs: Jobs, uploads: bool, max_uploads: int):
        if not isinstance(pipelines, Mapping):
            many = list(pipelines) if isinstance(pipelines, (list, tuple)) else [pipelines]
            names = [p.store.path.name for p in many]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise InputError(f"two indexes to serve are both named {twice[0]!r} (their folders' name): "
                                 "an index is chosen by that name, so rename one folder")
            pipelines = dict(zip(names, many))
        if not pipelines:
            raise InputError("no index to serve")
        self.entries = {name: Entry(name, pipe, Library(name, pipe, UploadFolder(pipe.store.path, max_uploads), jobs)
                                    if uploads else None) for name, pipe in pipelines.items()}
        self.default = next(iter(self.entries))

    def pick(self, name: str | None) -> Entry:
        entry = self.entries.get(name or self.default)
        if entry is None:
            raise HTTPException(404, f"no index {name!r} is served here; these are: {', '.join(self.entries)}")
        return entry

    def query(self):
        """The FastAPI dependency: the entry named by ?index= (the first index when absent)."""
        names = ", ".join(self.entries)

        def entry(index: str | None = Query(None, description=f"Which index: {names} (default {self.default}).")) -> Entry:
            return self.pick(index)

        return entry

