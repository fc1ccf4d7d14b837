"""Prompt audio loaded once: WAV files of any rate decoded to 8 kHz PCM, in an executor."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path

from audio.pcm import Pcm
from audio.wavio import load_wav

MAX_CACHED_PROMPTS = 256


class PromptCache:
    def __init__(self, max_items: int = MAX_CACHED_PROMPTS) -> None:
        self._items: OrderedDict[tuple[str, float], Pcm] = OrderedDict()
        self.max_items = max_items

    async def load(self, path: str | Path) -> Pcm:
        p = Path(path)
        loop = asyncio.get_running_loop()
        try:
            key = await loop.run_in_executor(None, _key, p)
        except OSError as e:
            raise FileNotFoundError(f"prompt {p} not found") from e
        pcm = self._items.get(key)
        if pcm is not None:
            self._items.move_to_end(key)
            return pcm
        pcm = await loop.run_in_executor(None, load_wav, p)
        self._items[key] = pcm
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        return pcm


def _key(p: Path) -> tuple[str, float]:
    return (str(p.resolve()), p.stat().st_mtime)
