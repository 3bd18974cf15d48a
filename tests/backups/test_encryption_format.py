"""The age format of itsm.backup.encryption: what it writes, the reference `age` tool reads, and the other way round;
any change to an archive (a flipped bit, a chunk cut off, a swapped header) fails to decrypt; keys are age's."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from itsm.backup.encryption import (
    CHUNK_SIZE,
    ArchiveDamaged,
    KeyInvalid,
    WrongKey,
    decrypt_file,
    encrypt_file,
    generate_key,
    is_encrypted,
    parse_key,
    recipient_of,
)

needs_age = pytest.mark.skipif(shutil.which("age") is None, reason="the reference age tool is not installed")
SEALED_CHUNK = CHUNK_SIZE + 16


@pytest.fixture
def key() -> str:
    return generate_key()


def sealed(tmp_path: Path, data: bytes, key: str) -> Path:
    (tmp_path / "clear").write_bytes(data)
    encrypt_file(tmp_path / "clear", tmp_path / "sealed.age", key=parse_key(key))
    return tmp_path / "sealed.age"


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17])
def test_what_is_encrypted_decrypts_to_the_same_bytes(tmp_path, key, size):
    data = os.urandom(size)
    archive = sealed(tmp_path, data, key)
    assert is_encrypted(archive)
    decrypt_file(archive, tmp_path / "back", keys=[parse_key(key)])
    assert (tmp_path / "back").read_bytes() == data


def test_a_flipped_bit_anywhere_fails_and_leaves_no_output(tmp_path, key):
    archive = sealed(tmp_path, os.urandom(2 * CHUNK_SIZE + 5), key)
    original = archive.read_bytes()
    header_end = original.index(b"\n---") + 1
    for position in (header_end + 10, len(original) - 5, len(original) // 2):
        changed = bytearray(original)
        changed[position] ^= 0x01
        archive.write_bytes(bytes(changed))
        with pytest.raises(ArchiveDamaged):
            decrypt_file(archive, tmp_path / "back", keys=[parse_key(key)])
        assert not (tmp_path / "back").exists()


def test_an_archive_cut_at_a_chunk_boundary_fails(tmp_path, key):
    archive = sealed(tmp_path, os.urandom(3 * CHUNK_SIZE), key)
    archive.write_bytes(archive.read_bytes()[:-SEALED_CHUNK])
    with pytest.raises(ArchiveDamaged, match="truncated or modified"):
        decrypt_file(archive, tmp_path / "back", keys=[parse_key(key)])


def test_another_key_is_refused_and_a_fallback_opens_it(tmp_path, key):
    archive = sealed(tmp_path, b"rows", key)
    other = parse_key(generate_key())
    with pytest.raises(WrongKey, match=recipient_of(other)):
        decrypt_file(archive, tmp_path / "back", keys=[other])
    with pytest.raises(WrongKey, match="no key is configured"):
        decrypt_file(archive, tmp_path / "back", keys=[])
    decrypt_file(archive, tmp_path / "back", keys=[other, parse_key(key)])
    assert (tmp_path / "back").read_bytes() == b"rows"


def test_a_mistyped_key_is_refused_with_a_reason(key):
    assert parse_key(f"# created: by age-keygen\n# public key: age1…\n{key}\n")
    typo = key[:-1] + ("Q" if key[-1] != "Q" else "P")
    with pytest.raises(KeyInvalid, match="checksum"):
        parse_key(typo)
    with pytest.raises(KeyInvalid, match="AGE-SECRET-KEY-1"):
        parse_key(recipient_of(parse_key(key)))


@needs_age
def test_the_reference_age_tool_reads_what_this_writes_and_the_other_way_round(tmp_path, key):
    data = os.urandom(CHUNK_SIZE * 2 + 99)
    identity = tmp_path / "key.txt"
    identity.write_text(key + "\n")
    archive = sealed(tmp_path, data, key)
    clear = subprocess.run(["age", "-d", "-i", str(identity), str(archive)], capture_output=True, check=True).stdout
    assert clear == data

    recipient = subprocess.run(["age-keygen", "-y", str(identity)], capture_output=True, check=True, text=True)
    assert recipient.stdout.strip() == recipient_of(parse_key(key))
    by_age = tmp_path / "by-age.age"
    subprocess.run(["age", "-r", recipient.stdout.strip(), "-o", str(by_age), str(tmp_path / "clear")], check=True)
    decrypt_file(by_age, tmp_path / "back", keys=[parse_key(key)])
    assert (tmp_path / "back").read_bytes() == data
