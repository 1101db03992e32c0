"""The character corpus: encoding, decoding and where the text comes from."""

import sysconfig
from pathlib import Path

import numpy as np
import pytest

from chainrule.datasets import DatasetError, DatasetNotFoundError, text


def test_encode_decode_round_trip():
    corpus = text.Corpus("hello, wörld ✓\n")
    assert corpus.vocab == sorted(set("hello, wörld ✓\n"))
    ids = corpus.encode("wörld ✓")
    assert ids.dtype == np.int64
    assert ids.tolist() == [corpus.vocab.index(ch) for ch in "wörld ✓"]
    assert corpus.decode(ids) == "wörld ✓"
    assert corpus.decode(corpus.ids) == corpus.text
    assert corpus.vocab_size == len(corpus.vocab) and len(corpus) == len(corpus.text)


def test_unknown_character_is_a_clear_error():
    corpus = text.Corpus("abc")
    with pytest.raises(ValueError, match=r"character 'z' \(U\+007A\) at position 2"):
        corpus.encode("abz")
    with pytest.raises(ValueError, match="character"):
        corpus.encode("\U0001f600")  # above every code point in the vocabulary


def test_decode_rejects_out_of_range_ids():
    corpus = text.Corpus("ab")
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 2\)"):
        corpus.decode([0, 2])
    assert corpus.decode(np.array([[1, 0]])) == "ba"


def test_empty_inputs():
    assert text.Corpus("ab").encode("").shape == (0,)
    assert text.Corpus("").decode([]) == ""


def test_load_a_file_and_cap_it(tmp_path):
    file = tmp_path / "a.txt"
    file.write_text("first line\nsecond line\n", encoding="utf-8")
    corpus = text.load(file)
    assert corpus.text == "first line\nsecond line\n" and corpus.files == [file]
    assert text.load(file, max_chars=5).text == "first"


def test_load_a_folder_in_sorted_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("3")
    (tmp_path / "a.txt").write_text("1")
    (tmp_path / "b.txt").write_text("2")
    (tmp_path / ".hidden.txt").write_text("H")
    (tmp_path / "skip.md").write_text("M")
    assert text.load(tmp_path, pattern="*.txt").text == "123"
    assert text.load(tmp_path).text == "123M"  # "b.txt" < "b/z.txt" < "skip.md"


def test_load_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nope"):
        text.load(tmp_path / "nope")
    with pytest.raises(DatasetNotFoundError, match="no files matching"):
        text.load(tmp_path, pattern="*.txt")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DatasetError, match="latin.txt: not UTF-8"):
        text.load(tmp_path / "latin.txt")
    with pytest.raises(ValueError, match="max_chars"):
        text.load(tmp_path, max_chars=-1)


def test_stdlib_files_are_sorted_and_skip_tests_and_site_packages():
    root = Path(sysconfig.get_paths()["stdlib"])
    files = text.stdlib_files()
    rel = [f.relative_to(root).as_posix() for f in files]
    assert rel == sorted(rel) and len(rel) > 100
    assert all(r.endswith(".py") for r in rel)
    assert "os.py" in rel and "json/decoder.py" in rel
    excluded = {"site-packages", "dist-packages", "test", "tests", "idle_test"}
    assert not any(excluded & set(r.split("/")[:-1]) for r in rel)


def test_default_corpus_is_the_stdlib_prefix():
    corpus = text.load(max_chars=20_000)
    assert len(corpus.text) == 20_000
    first = text.stdlib_files()[0]
    assert corpus.files[0] == first
    assert corpus.text.startswith(first.read_text(encoding="utf-8")[:1000])
    assert corpus.decode(corpus.encode(corpus.text[:500])) == corpus.text[:500]
