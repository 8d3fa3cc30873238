"""The photo's identity is its bytes: same bytes, same hash; any change, a new hash."""

from __future__ import annotations

import hashlib
import os

import pytest

from lesionviewer.io.hashing import bytes_hash, content_hash


def test_matches_sha256_of_the_bytes_across_chunk_boundaries(tmp_path):
    data = os.urandom(3 * (1 << 20) + 17)
    path = tmp_path / "läsion_日本.jpg"
    path.write_bytes(data)
    assert content_hash(path) == hashlib.sha256(data).hexdigest() == bytes_hash(data)
    assert content_hash(str(path)) == content_hash(path)


def test_renamed_copy_has_the_same_hash_and_an_edit_changes_it(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"photo bytes")
    (tmp_path / "b.jpg").write_bytes(b"photo bytes")
    assert content_hash(tmp_path / "a.jpg") == content_hash(tmp_path / "b.jpg")
    first = content_hash(tmp_path / "a.jpg")
    (tmp_path / "a.jpg").write_bytes(b"photo bytez")  # same size, rewritten
    assert content_hash(tmp_path / "a.jpg") != first


def test_missing_file_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        content_hash(tmp_path / "nope.jpg")
