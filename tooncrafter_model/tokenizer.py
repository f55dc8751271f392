"""CLIP's byte-level BPE tokenizer (the one open_clip 2.22 `tokenize` uses), written from its description.

Text is cleaned (ftfy, HTML unescape, whitespace collapse), lower-cased and split by CLIP's pre-tokenizer
pattern; each piece is mapped byte -> printable character, the last character gets the `</w>` end-of-word
mark, and merges are applied lowest rank first. Output: [SOT, ids..., EOT] zero-padded to 77, truncated so that
EOT stays at the last position. The merge list is the MIT-licensed `bpe_simple_vocab_16e6.txt.gz`.
"""

from __future__ import annotations

import gzip
import html
import os
from collections.abc import Sequence

import ftfy
import regex
import torch

from tooncrafter_model.weights import WheelFile, fetch

BPE_VOCAB = WheelFile(
    "open_clip_torch==2.22.0",
    "open_clip/bpe_simple_vocab_16e6.txt.gz",
    "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a",
    "openclip-bpe_simple_vocab_16e6.txt.gz",
)

_N_MERGES = 49152 - 256 - 2  # merges used by CLIP: the vocabulary ends at 49408 with the two specials
_SOT, _EOT = "<start_of_text>", "<end_of_text>"
_PATTERN = r"""<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
_CACHE_LIMIT = 20000


def bytes_to_unicode() -> dict[int, str]:
    """Reversible byte -> character map: printable Latin-1 bytes map to themselves, the rest to 256+n."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def clean_text(text: str) -> str:
    """ftfy fix, double HTML unescape, collapse whitespace, lower-case."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


class BPETokenizer:
    """Callable: list of prompts -> LongTensor [N, context_length]."""

    def __init__(self, vocab_path: str | os.PathLike[str]) -> None:
        try:
            with gzip.open(vocab_path, "rt", encoding="utf-8") as f:
                lines = f.read().split("\n")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise ValueError(f"{vocab_path}: not a gzip'd BPE merge list ({exc})") from None
        merges = [tuple(line.split()) for line in lines[1 : _N_MERGES + 1]]
        if len(merges) != _N_MERGES or any(len(m) != 2 for m in merges):
            raise ValueError(f"{vocab_path}: expected {_N_MERGES} merge pairs after the header line")
        self.byte_map = bytes_to_unicode()
        base = list(self.byte_map.values())
        vocab = base + [c + "</w>" for c in base] + ["".join(m) for m in merges] + [_SOT, _EOT]
        self.encoder = {tok: i for i, tok in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.sot, self.eot = self.encoder[_SOT], self.encoder[_EOT]
        self.pattern = regex.compile(_PATTERN, regex.IGNORECASE)
        # special tokens written in the text stay whole, as in CLIP
        self._cache: dict[str, list[str]] = {_SOT: [_SOT], _EOT: [_EOT]}

    @classmethod
    def from_cache(cls, cache_dir: str | os.PathLike[str] | None = None) -> BPETokenizer:
        """The tokenizer with the pinned vocabulary from the model cache (downloaded once)."""
        return cls(fetch(BPE_VOCAB, cache_dir))

    def _bpe(self, piece: str) -> list[str]:
        cached = self._cache.get(piece)
        if cached is not None:
            return cached
        word = [*piece[:-1], piece[-1] + "</w>"]
        while len(word) > 1:
            best = min(zip(word, word[1:]), key=lambda pair: self.ranks.get(pair, _N_MERGES))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[piece] = word
        return word

    def encode(self, text: str) -> list[int]:
        """Token ids of one text, without SOT/EOT."""
        ids: list[int] = []
        for piece in self.pattern.findall(clean_text(text)):
            mapped = "".join(self.byte_map[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[tok] for tok in self._bpe(mapped))
        return ids

    def __call__(self, texts: str | Sequence[str], context_length: int = 77) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot]
            if len(ids) > context_length:
                ids = ids[:context_length]
                ids[-1] = self.eot
            out[row, : len(ids)] = torch.tensor(ids)
        return out
