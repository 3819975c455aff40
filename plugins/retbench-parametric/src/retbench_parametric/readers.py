"""Reader shortcuts: the ``rag`` reader with a parametric injector by default
(``--reader prag`` is ``--reader rag --injector prag``)."""

from __future__ import annotations

from retbench_readers.rag import RagReader


class PragReader(RagReader):
    name = "prag"
    injector = "prag"


class DyPragReader(RagReader):
    name = "dyprag"
    injector = "dyprag"
