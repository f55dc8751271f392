"""Our CLIP BPE tokenizer against token ids known from CLIP (the golden text stage checks more through the model)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from tooncrafter_model.tokenizer import BPETokenizer, bytes_to_unicode

SOT, EOT = 49406, 49407


def ids(tok: BPETokenizer, text: str) -> list[int]:
    row = tok([text])[0].tolist()
    return row[: row.index(EOT) + 1]


def test_known_prompts(tokenizer: BPETokenizer) -> None:
    assert len(tokenizer.encoder) == 49408
    assert ids(tokenizer, "a photo of a cat") == [SOT, 320, 1125, 539, 320, 2368, EOT]
    assert ids(tokenizer, "walking man") == [SOT, 3941, 786, EOT]
    assert ids(tokenizer, "") == [SOT, EOT]


def test_cleanup_is_case_html_and_whitespace_insensitive(tokenizer: BPETokenizer) -> None:
    assert ids(tokenizer, "  A   Photo\n of a CAT ") == ids(tokenizer, "a photo of a cat")
    assert ids(tokenizer, "fish &amp;amp; chips") == ids(tokenizer, "fish & chips")
    assert ids(tokenizer, "<start_of_text> cat") == [SOT, SOT, 2368, EOT]  # a special token in the text stays whole


def test_output_is_padded_and_truncated_to_77(tokenizer: BPETokenizer) -> None:
    out = tokenizer(["cat", " ".join(["cat"] * 200)])
    assert out.shape == (2, 77) and out.dtype == torch.long
    assert out[0, 3:].eq(0).all()
    assert out[1, 0].item() == SOT and out[1, 76].item() == EOT and out[1, 1:76].eq(2368).all()


def test_unicode_goes_through_bytes(tokenizer: BPETokenizer) -> None:
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    row = ids(tokenizer, "café 東京")
    assert row[0] == SOT and row[-1] == EOT and all(0 <= i < 49406 for i in row[1:-1])


def test_a_bad_vocabulary_file_names_itself(tmp_path: Path) -> None:
    plain = tmp_path / "vocab.txt.gz"
    plain.write_text("not gzip")
    with pytest.raises(ValueError, match=r"vocab\.txt\.gz: not a gzip'd BPE merge list"):
        BPETokenizer(plain)
    short = tmp_path / "short.txt.gz"
    with gzip.open(short, "wt") as f:
        f.write("#version\na b\n")
    with pytest.raises(ValueError, match=r"short\.txt\.gz: expected 48894 merge pairs"):
        BPETokenizer(short)
