"""The scene's own peak finder against scipy.signal.find_peaks (replaced to save ~0.5 s)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import find_peaks as scipy_find_peaks

from pcsep_cli.scene.planes import find_peaks


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=1, max_size=200),
    st.integers(1, 15),
    st.booleans(),
)
def test_find_peaks_matches_scipy(values: list[int], distance: int, smooth: bool) -> None:
    # Small integers give plateaus and ties, the cases where peak finders differ.
    x = np.asarray(values, dtype=float)
    if smooth:
        x = np.convolve(x, [1, 2, 3, 2, 1], mode="same") / 9
    expected, _ = scipy_find_peaks(x, distance=distance)
    np.testing.assert_array_equal(find_peaks(x, distance), expected)


def test_find_peaks_keeps_the_higher_of_two_close_peaks() -> None:
    x = np.array([0, 1, 0, 3, 0, 0, 0, 2, 0], dtype=float)
    assert find_peaks(x, 3).tolist() == [3, 7]
    assert find_peaks(x, 1).tolist() == [1, 3, 7]


def test_separate_does_not_import_scipy_signal_or_dynamo() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pcsep_cli.separate, pcsep_cli.scene\n"
        "from pcsep_cli.hub.models import bundled_models_dir, expected_tensors\n"
        "from pcsep_cli.nets.model import load_config\n"
        "expected_tensors(load_config(bundled_models_dir() / 'pcsep-base'))\n"
        "print(sorted(m for m in ('scipy.signal', 'torch._dynamo') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
