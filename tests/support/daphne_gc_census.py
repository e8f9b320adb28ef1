"""daphne, which on SIGUSR1 writes its objects by type: those still in use, and those its cyclic
garbage collector had to free.

    GC_CENSUS_PATH=census.json python -m tests.support.daphne_gc_census [daphne's arguments]

With DEBUG_SAVEALL the collector keeps what it finds unreachable in `gc.garbage` instead of
freeing it: objects freed by their reference counts never get there, objects that were left in
reference cycles all do.
"""

import collections
import gc
import json
import os
import signal
from pathlib import Path

from daphne.cli import CommandLineInterface


def write_census(signum, frame) -> None:
    gc.collect()
    garbage = collections.Counter(type(found).__qualname__ for found in gc.garbage)
    tracked = collections.Counter(type(found).__qualname__ for found in gc.get_objects())
    census = {"in_use": tracked - garbage, "garbage": garbage}
    path = Path(os.environ["GC_CENSUS_PATH"])
    path.with_suffix(".tmp").write_text(json.dumps(census))
    path.with_suffix(".tmp").replace(path)


gc.set_debug(gc.DEBUG_SAVEALL)
signal.signal(signal.SIGUSR1, write_census)
CommandLineInterface.entrypoint()
