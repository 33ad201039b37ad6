"""Chunks with overlapping crossfades: how a long signal is cut, processed and joined again.

A signal is read as blocks of ``block`` samples, each repeating the previous block's last
``overlap`` samples (:func:`pcsep_cli.io.audio.iter_blocks` for files, :func:`array_blocks`
for arrays). :func:`overlap_add` processes one block at a time and joins the results: over
each overlap the earlier block fades out with ``cos²`` while the later fades in with ``sin²``,
so the weights sum to one everywhere and a process that returns its input gives the signal
back exactly. Only one block and one overlap tail are held, whatever the duration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

__all__ = ["array_blocks", "crossfade", "overlap_add"]


def array_blocks(audio: np.ndarray, block: int, overlap: int) -> Iterator[np.ndarray]:
    """Blocks of an in-memory ``(C, S)`` signal, as ``iter_blocks`` reads them from a file.

    Raises:
        ValueError: ``block < 1`` or ``overlap`` outside ``[0, block)``.
    """
    if block < 1 or not 0 <= overlap < block:
        raise ValueError(f"need block >= 1 > overlap >= 0, got {block}, {overlap}")
    start = 0
    while True:
        yield audio[:, start : start + block]
        if start + block >= audio.shape[1]:
            return
        start += block - overlap


def crossfade(overlap: int) -> np.ndarray:
    """Fade-in weights ``sin²`` of length ``overlap``; the fade-out is ``1 - fade_in``."""
    t = (np.arange(overlap) + 0.5) / max(overlap, 1)
    return (np.sin(0.5 * np.pi * t) ** 2).astype(np.float32)


def _lookahead(blocks: Iterable[np.ndarray], overlap: int) -> Iterator[tuple[np.ndarray, bool]]:
    """(block, is_last); a trailing block with nothing new past the overlap is dropped."""
    it = iter(blocks)
    prev = next(it, None)
    if prev is None:
        return
    for block in it:
        if block.shape[1] <= overlap:
            continue
        yield prev, False
        prev = block
    yield prev, True


def overlap_add(
    blocks: Iterable[np.ndarray],
    overlap: int,
    process: Callable[[np.ndarray], np.ndarray],
) -> Iterator[np.ndarray]:
    """Process overlapping blocks and join the outputs with crossfades.

    Args:
        blocks: float ``(C, n)`` blocks sharing ``overlap`` samples with the previous one.
        overlap: samples shared by consecutive blocks.
        process: float32 ``(C, n)`` → ``(..., n)`` (any leading axes, e.g. stems × channels).

    Yields:
        ``(..., m)`` pieces that, concatenated on the last axis, cover the signal once.

    Raises:
        ValueError: a block that is not ``(C, n)``.
    """
    fade_in = crossfade(overlap)
    tail: np.ndarray | None = None
    for block, last in _lookahead(blocks, overlap):
        if block.ndim != 2 or block.shape[0] < 1:
            raise ValueError(f"blocks must be (channels, samples), got {block.shape}")
        out = np.asarray(process(np.ascontiguousarray(block, dtype=np.float32)))
        n = out.shape[-1]
        if tail is not None:
            out[..., :overlap] *= fade_in
            out[..., :overlap] += tail
        if last or not overlap:
            ready, tail = out, None
        else:
            out[..., n - overlap :] *= 1 - fade_in
            ready, tail = out[..., : n - overlap], out[..., n - overlap :].copy()
        yield ready
