"""Seeded mutations of real files for the fuzz tests, and the checks every input must pass.

A mutated input is a seed file from ``corpus/`` with a few edits drawn by hypothesis: bit
flips, "interesting" integers written over header fields, numbers in a text header replaced,
truncation, insertion, deletion, and splices from another seed. Each input must end in a
result or the reader's typed error within :data:`TIME_LIMIT_S` seconds, allocating at most
:data:`MEMORY_LIMIT` bytes (tracemalloc: every Python and numpy allocation).
"""

from __future__ import annotations

import os
import re
import signal
import struct
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
REGRESSIONS = HERE / "regressions"
TIME_LIMIT_S = 5.0
MEMORY_LIMIT = 1 << 30
# CI: a fixed, short run per reader; PCSEP_FUZZ_SECONDS: random runs until the budget is spent.
CI_EXAMPLES = 200
BUDGET_S = float(os.environ.get("PCSEP_FUZZ_SECONDS", "0"))
# Each harness gets an equal share of the budget: the five reader targets (ply, las, pcd, e57,
# audio), the model loader's two (config values, bytes) and the CSV manifest.
HARNESSES = 8
SHARE = 1 / HARNESSES

_INTS = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2**63 - 1]
_NUMBERS = [b"0", b"-1", b"1", b"4294967296", b"99999999999999", b"1e308", b"nan", b"", b"3.5"]


def seeds(*suffixes: str) -> list[Path]:
    """The seed files whose names end with one of ``suffixes``."""
    found = sorted(p for p in CORPUS.iterdir() if p.name.endswith(suffixes))
    assert found, f"no seed ending with {suffixes} in {CORPUS}"
    return found


_op = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(0, 7)),
    st.tuples(st.just("int"), st.integers(0, 1 << 16), st.sampled_from(_INTS), st.booleans()),
    st.tuples(st.just("number"), st.integers(0, 63), st.sampled_from(_NUMBERS)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 16)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 64)),
    st.tuples(st.just("splice"), st.integers(0, 1 << 16), st.integers(0, 1 << 16)),
)


def apply(data: bytes, ops: list[tuple], donor: bytes, text: int = 1024) -> bytes:
    """Apply mutation ``ops`` (as drawn by :func:`mutations`) to ``data``; ``donor`` feeds
    splices (the tail of another seed from offset ``b`` goes in at offset ``a``); ``number``
    edits pick one of the numbers in the first ``text`` bytes (the k-th of 64 spread over them
    when ``text`` is more than a KiB)."""
    buf = bytearray(data)
    for op in ops:
        kind, n = op[0], max(len(buf), 1)
        if kind == "flip" and buf:
            buf[op[1] % n] ^= 1 << op[2]
        elif kind == "int" and buf:
            fmt = "<Q" if op[2] > 0xFFFFFFFF else "<I"
            packed = struct.pack(fmt if op[3] else fmt.replace("<", ">"), op[2])
            at = op[1] % n
            buf[at : at + len(packed)] = packed
        elif kind == "number":
            # Text headers (PLY, PCD, ASCII bodies): replace the k-th number in the first KiB.
            head = bytes(buf[:text])
            found = list(re.finditer(rb"-?\d+(\.\d+)?", head))
            if found:
                k = op[1] * len(found) // 64 if text > 1024 else op[1]
                m = found[k % len(found)]
                buf[m.start() : m.end()] = op[2]
        elif kind == "truncate":
            del buf[op[1] % n :]
        elif kind == "insert":
            at = op[1] % n
            buf[at:at] = op[2]
        elif kind == "delete" and buf:
            at = op[1] % n
            del buf[at : at + op[2]]
        elif kind == "splice" and donor:
            at, start = op[1] % n, op[2] % len(donor)
            buf[at:] = donor[start:]
    return bytes(buf)


mutations = st.lists(_op, min_size=1, max_size=6)

E57_LAYERS = ("file", "pages", "xml", "numbers")
"""Where E57 mutations land: the file as it is (libE57Format's page CRCs catch nearly all),
the bytes inside the pages with the CRCs and length made right again (its XML and binary
decoders see them), the XML section alone (its length fixed), or only numbers in the XML
(:data:`xml_numbers`: the XML stays well formed, its counts, offsets and bounds change)."""

_XML_NUMBERS = [b"0", b"-1", b"1", b"2", b"63", b"64", b"255", b"65536", b"4294967296",
                b"9223372036854775807", b"18446744073709551616", b"-9223372036854775808",
                b"1e308", b"-1e308", b"1e-320", b"nan", b"inf", b"", b"3.5"]  # fmt: skip
xml_numbers = st.lists(
    st.tuples(st.just("number"), st.integers(0, 63), st.sampled_from(_XML_NUMBERS)),
    min_size=1,
    max_size=4,
)


def apply_e57(data: bytes, ops: list[tuple], donor: bytes, layer: str) -> bytes:
    """:func:`apply` on one layer of an E57 file (see :data:`E57_LAYERS`); for ``numbers``,
    ``ops`` are drawn from :data:`xml_numbers`."""
    from helpers.clouds import e57_logical, e57_paged, e57_xml_span

    if layer == "file":
        return apply(data, ops, donor)
    logical = e57_logical(data)
    if layer == "pages":
        return e57_paged(apply(bytes(logical), ops, donor))
    # "xml" and "numbers": the XML section only
    span = e57_xml_span(logical)
    xml = apply(bytes(logical[span]), ops, donor, text=1 << 16)
    logical[span.start :] = xml
    logical[32:40] = struct.pack("<Q", len(xml))
    return e57_paged(logical)


def fuzz_settings() -> settings:
    """Deterministic and short in CI; random and long under ``PCSEP_FUZZ_SECONDS``."""
    return settings(
        max_examples=CI_EXAMPLES if not BUDGET_S else 1000,
        derandomize=not BUDGET_S,
        database=None,
        deadline=None,  # the 5 s limit is checked by bounded(); hypothesis' deadline is flaky
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


EXAMPLES = [0]
"""Inputs checked so far in this process (each passes through :func:`bounded`)."""


def run_fuzz(test: Callable[[], None], share: float) -> None:
    """Run a ``@given`` test once (CI), or again and again for ``share`` of the budget.

    With ``PCSEP_FUZZ_REPORT=FILE`` a line per harness is appended there: the test's id, the
    inputs it checked and the seconds it ran (the campaign figures in README.md).
    """
    first, start = EXAMPLES[0], time.monotonic()
    test()
    stop = start + BUDGET_S * share
    while time.monotonic() < stop:
        test()
    report = os.environ.get("PCSEP_FUZZ_REPORT")
    if report:
        test_id = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
        with open(report, "a") as fh:
            fh.write(f"{test_id}\t{EXAMPLES[0] - first}\t{time.monotonic() - start:.0f}\n")


class _Hung(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hung


@contextmanager
def bounded(what: str) -> Iterator[None]:
    """Fail if the body takes over :data:`TIME_LIMIT_S` s or allocates over 1 GiB."""
    old = signal.signal(signal.SIGALRM, _alarm)
    # The alarm stops a Python-level loop; time spent in C is caught by the clock check.
    signal.setitimer(signal.ITIMER_REAL, 4 * TIME_LIMIT_S)
    tracemalloc.start()
    start = time.perf_counter()
    EXAMPLES[0] += 1
    try:
        yield
    except _Hung:
        raise AssertionError(f"{what}: still running after {4 * TIME_LIMIT_S} s") from None
    finally:
        took = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        # Checked here so that a typed error raised too late or too big fails as well.
        assert took < TIME_LIMIT_S, f"{what}: took {took:.1f} s"  # noqa: B012
        assert peak < MEMORY_LIMIT, f"{what}: allocated {peak / 2**20:.0f} MiB"  # noqa: B012


def save_regression(name: str, data: bytes) -> Path:
    """Keep a failing input under ``regressions/`` (named by content) for the replay test."""
    import hashlib

    REGRESSIONS.mkdir(exist_ok=True)
    path = REGRESSIONS / f"{Path(name).stem}-{hashlib.sha1(data).hexdigest()[:10]}"
    path = path.with_suffix(Path(name).suffix)
    path.write_bytes(data)
    return path
