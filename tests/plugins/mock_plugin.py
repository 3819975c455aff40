"""Single-file plugin used by the CLI tests through --plugins-dir: the testing-kit mocks."""

import os
import time

from retbench import hookimpl
from retbench.testing.mocks import CountingRetriever, EchoReader, MockPlugin

_mocks = MockPlugin()


@hookimpl
def retbench_register_datasets(register):
    _mocks.retbench_register_datasets(register)


class LoggingEchoReader(EchoReader):
    """``echo`` that logs "answer <pid> <qids>" to $RETBENCH_TEST_CALLS for each call, and
    fails on the query named by $RETBENCH_TEST_FAIL_ON (for tests of the Ray workers)."""

    name = "logging-echo"

    def answer(self, queries, injections):
        if os.environ.get("RETBENCH_TEST_FAIL_ON") in queries:
            raise ValueError(f"cannot answer {os.environ['RETBENCH_TEST_FAIL_ON']}")
        with open(os.environ["RETBENCH_TEST_CALLS"], "a") as handle:
            handle.write(f"answer {os.getpid()} {','.join(queries)}\n")
        return super().answer(queries, injections)


@hookimpl
def retbench_register_readers(register):
    _mocks.retbench_register_readers(register)
    register(LoggingEchoReader)


@hookimpl
def retbench_register_rerankers(register):
    _mocks.retbench_register_rerankers(register)


class SlowFlakyRetriever(CountingRetriever):
    """For process-level tests: logs each index/search call to $RETBENCH_TEST_CALLS, sleeps
    while indexing, and dies like a killed process (os._exit) the first time it sees the
    query named by $RETBENCH_TEST_DIE_ON. With $RETBENCH_TEST_WAIT_FOR_INDEX=N, ``load_index``
    reads its files only once N index calls are logged (another process is indexing)."""

    name = "slow-flaky"
    version = "1"

    def _log(self, what: str) -> None:
        with open(os.environ["RETBENCH_TEST_CALLS"], "a") as handle:
            handle.write(what + "\n")

    def index(self, corpus, *, workdir):
        self._log("index")
        time.sleep(float(os.environ.get("RETBENCH_TEST_SLEEP", "0")))
        super().index(corpus, workdir=workdir)

    def load_index(self, *, workdir):
        self._log("load_index")
        wanted = int(os.environ.get("RETBENCH_TEST_WAIT_FOR_INDEX", "0"))
        deadline = time.time() + 60
        while wanted and time.time() < deadline:
            with open(os.environ["RETBENCH_TEST_CALLS"]) as handle:
                if handle.read().splitlines().count("index") >= wanted:
                    break
            time.sleep(0.05)
        super().load_index(workdir=workdir)

    def search(self, queries, *, k):
        die_on = os.environ.get("RETBENCH_TEST_DIE_ON")
        marker = os.environ["RETBENCH_TEST_CALLS"] + ".died"
        if die_on in queries and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(9)
        self._log("search " + ",".join(queries))
        return super().search(queries, k=k)


@hookimpl
def retbench_register_retrievers(register):
    _mocks.retbench_register_retrievers(register)
    register(SlowFlakyRetriever)
