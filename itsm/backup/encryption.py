"""Archives encrypted at rest in the age format (https://age-encryption.org/v1), to an X25519 key.

The format is age's, byte for byte, so the reference `age` tool decrypts an archive by hand on any host:
`age -d -i key.txt backup_…dump.age > backup_…dump`. The primitives come from `cryptography` (X25519, HKDF-SHA256,
HMAC-SHA256, ChaCha20-Poly1305); nothing here invents a construction, it follows the specification:

    age-encryption.org/v1
    -> X25519 <ephemeral share>          a 16-byte file key, wrapped for the recipient
    <wrapped file key>
    --- <header MAC>
    <16-byte nonce><payload in 64 KiB chunks, each sealed with ChaCha20-Poly1305, the last one flagged>

Streaming: one chunk (64 KiB) is in memory at a time, however large the archive. Every chunk is authenticated, and
the last one is flagged, so a modified, reordered or truncated archive fails to decrypt instead of restoring
something else. An archive is told from a plain one by its first line (and, on disk and in S3, by `.age` at the end
of its name)."""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from itsm.backup.base import BackupError

MAGIC = b"age-encryption.org/v1\n"
SUFFIX = ".age"
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
X25519_LABEL = b"age-encryption.org/v1/X25519"
SECRET_KEY_PREFIX = "AGE-SECRET-KEY-"  # noqa: S105  (the prefix of every age identity, not a secret)
RECIPIENT_PREFIX = "age"


class KeyInvalid(BackupError):
    """A configured key is not an age X25519 identity (AGE-SECRET-KEY-1…)."""


class WrongKey(BackupError):
    """None of the configured keys opens this archive."""


class ArchiveDamaged(BackupError):
    """The archive's header or payload does not authenticate: it was truncated or modified."""


# --- keys --------------------------------------------------------------------------------------------------------
def generate_key() -> str:
    """A new identity, as `age-keygen` prints it: AGE-SECRET-KEY-1…"""
    raw = X25519PrivateKey.generate().private_bytes_raw()
    return _bech32_encode(SECRET_KEY_PREFIX.lower(), raw).upper()


def parse_key(text: str) -> X25519PrivateKey:
    """An AGE-SECRET-KEY-1… identity; a file of `age-keygen` (with its # comments) is accepted too."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if len(lines) != 1:
        raise KeyInvalid("the key must be one AGE-SECRET-KEY-1… line (as printed by `manage.py backup_key`)")
    hrp, data = _bech32_decode(lines[0])
    if hrp != SECRET_KEY_PREFIX.lower() or len(data) != 32:
        raise KeyInvalid("the key is not an age X25519 identity: it must start with AGE-SECRET-KEY-1")
    return X25519PrivateKey.from_private_bytes(data)


def recipient_of(key: X25519PrivateKey) -> str:
    """The public half (age1…): what `age -r` encrypts to; safe to show."""
    return _bech32_encode(RECIPIENT_PREFIX, _public_bytes(key.public_key()))


def is_encrypted(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


# --- encrypt -----------------------------------------------------------------------------------------------------
def encrypt_file(source: Path, target: Path, *, key: X25519PrivateKey) -> None:
    """Write `source` to `target` encrypted to `key`'s recipient, streaming."""
    file_key = os.urandom(16)
    header = MAGIC + _x25519_stanza(file_key, key.public_key()) + b"---"
    mac = hmac.digest(_hkdf(file_key, b"", b"header"), header, "sha256")
    nonce = os.urandom(16)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    with source.open("rb") as plain, target.open("wb") as out:
        out.write(header + b" " + _b64(mac) + b"\n" + nonce)
        counter = 0
        chunk = plain.read(CHUNK_SIZE)
        while True:
            following = plain.read(CHUNK_SIZE) if len(chunk) == CHUNK_SIZE else b""
            last = not following
            out.write(aead.encrypt(_chunk_nonce(counter, last=last), chunk, None))
            if last:
                break
            chunk, counter = following, counter + 1


def _x25519_stanza(file_key: bytes, recipient: X25519PublicKey) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    share = _public_bytes(ephemeral.public_key())
    shared = ephemeral.exchange(recipient)
    wrap_key = _hkdf(shared, share + _public_bytes(recipient), X25519_LABEL)
    body = ChaCha20Poly1305(wrap_key).encrypt(bytes(12), file_key, None)
    return b"-> X25519 " + _b64(share) + b"\n" + _b64(body) + b"\n"


# --- decrypt -----------------------------------------------------------------------------------------------------
def decrypt_file(source: Path, target: Path, *, keys: Sequence[X25519PrivateKey]) -> None:
    """Write the plaintext of `source` to `target`, opened with the first of `keys` that fits. WrongKey when none
    does, ArchiveDamaged when it does not authenticate; `target` is removed on any error."""
    try:
        with source.open("rb") as handle, target.open("wb") as out:
            file_key = _open_header(handle, keys, name=source.name)
            nonce = handle.read(16)
            if len(nonce) != 16:
                raise ArchiveDamaged(f"{source.name} ends inside its header: it is truncated")
            aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
            counter = 0
            sealed = handle.read(CHUNK_SIZE + TAG_SIZE)
            while True:
                following = handle.read(CHUNK_SIZE + TAG_SIZE) if len(sealed) == CHUNK_SIZE + TAG_SIZE else b""
                last = not following
                try:
                    chunk = aead.decrypt(_chunk_nonce(counter, last=last), sealed, None)
                except InvalidTag:
                    raise ArchiveDamaged(
                        f"{source.name} does not authenticate at byte {counter * CHUNK_SIZE} of its content: it was "
                        "truncated or modified"
                    ) from None
                if not chunk and counter > 0:
                    raise ArchiveDamaged(f"{source.name} ends with an empty chunk: it is not a valid age file")
                out.write(chunk)
                if last:
                    return
                sealed, counter = following, counter + 1
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _open_header(handle: IO[bytes], keys: Sequence[X25519PrivateKey], *, name: str) -> bytes:
    """The file key, from the first X25519 stanza one of `keys` unwraps; the header MAC checked."""
    if handle.readline(len(MAGIC)) != MAGIC:
        raise ArchiveDamaged(f"{name} is not an age-encrypted archive")
    header = MAGIC
    stanzas: list[tuple[list[bytes], bytes]] = []
    while True:
        line = handle.readline(4096)
        if not line.endswith(b"\n"):
            raise ArchiveDamaged(f"{name}: the age header is truncated or malformed")
        if line.startswith(b"--- "):
            header += b"---"
            mac = line[4:-1]
            break
        if not line.startswith(b"-> "):
            raise ArchiveDamaged(f"{name}: the age header is malformed")
        header += line
        body = b""
        while True:  # the body is base64 in lines of 64 columns, the last one shorter
            body_line = handle.readline(4096)
            header += body_line
            body += body_line.rstrip(b"\n")
            if len(body_line.rstrip(b"\n")) < 64:
                break
        stanzas.append((line[3:-1].split(b" "), body))
    file_key = _unwrap(stanzas, keys, name=name)
    expected = hmac.digest(_hkdf(file_key, b"", b"header"), header, "sha256")
    if not hmac.compare_digest(_b64(expected), mac):
        raise ArchiveDamaged(f"{name}: the age header does not authenticate: it was modified")
    return file_key


def _unwrap(stanzas: list[tuple[list[bytes], bytes]], keys: Sequence[X25519PrivateKey], *, name: str) -> bytes:
    if not keys:
        raise WrongKey(
            f"{name} is encrypted and no key is configured: set BACKUP_ENCRYPTION_KEY (or BACKUP_ENCRYPTION_KEY_FILE) "
            "to the key the backups were taken with"
        )
    for arguments, body in stanzas:
        if arguments[0] != b"X25519" or len(arguments) != 2:
            continue
        share = _unb64(arguments[1], name)
        for key in keys:
            shared = key.exchange(X25519PublicKey.from_public_bytes(share))
            wrap_key = _hkdf(shared, share + _public_bytes(key.public_key()), X25519_LABEL)
            try:
                return ChaCha20Poly1305(wrap_key).decrypt(bytes(12), _unb64(body, name), None)
            except InvalidTag:
                continue
    shown = ", ".join(recipient_of(key) for key in keys)
    raise WrongKey(
        f"{name} was encrypted with another key: none of the configured keys ({shown}) opens it. Set "
        "BACKUP_ENCRYPTION_KEY, or add the key it was taken with to BACKUP_ENCRYPTION_KEY_FALLBACKS"
    )


# --- helpers -----------------------------------------------------------------------------------------------------
def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _chunk_nonce(counter: int, *, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _public_bytes(key: X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _unb64(data: bytes, name: str) -> bytes:
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except ValueError:
        raise ArchiveDamaged(f"{name}: the age header is malformed (bad base64)") from None


# Bech32 (BIP 173), which age uses to print keys.
_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            checksum ^= _GENERATOR[i] if (top >> i) & 1 else 0
    return checksum


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data: bytes | list[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int] | None:
    accumulator, bits, out = 0, 0, []
    for value in data:
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((accumulator >> bits) & ((1 << to_bits) - 1))
    if pad and bits:
        out.append((accumulator << (to_bits - bits)) & ((1 << to_bits) - 1))
    elif not pad and (bits >= from_bits or (accumulator << (to_bits - bits)) & ((1 << to_bits) - 1)):
        return None
    return out


def _bech32_encode(hrp: str, data: bytes) -> str:
    values = _convert_bits(data, 8, 5, pad=True) or []
    checksum = _polymod([*_hrp_expand(hrp), *values, 0, 0, 0, 0, 0, 0]) ^ 1
    values += [(checksum >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in values)


def _bech32_decode(text: str) -> tuple[str, bytes]:
    if text.lower() != text and text.upper() != text:
        raise KeyInvalid("the key mixes upper and lower case")
    text = text.lower()
    separator = text.rfind("1")
    if separator < 1 or separator + 7 > len(text) or any(c not in _CHARSET for c in text[separator + 1 :]):
        raise KeyInvalid("the key is not bech32-encoded (as age prints keys)")
    hrp, values = text[:separator], [_CHARSET.find(c) for c in text[separator + 1 :]]
    if _polymod([*_hrp_expand(hrp), *values]) != 1:
        raise KeyInvalid("the key's checksum is wrong: it was mistyped or cut")
    data = _convert_bits(values[:-6], 5, 8, pad=False)
    if data is None:
        raise KeyInvalid("the key is not bech32-encoded (as age prints keys)")
    return hrp, bytes(data)
