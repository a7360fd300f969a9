"""SHA-256 whose state can be saved and resumed elsewhere.

A resumable upload arrives in pieces (PATCH requests), each maybe at another worker of another
instance, and the file's SHA-256 must be computed as its bytes arrive: reading the whole file
back at the end would double the work. hashlib cannot export its state, but OpenSSL's low-level
SHA-256 works on a plain struct (SHA256_CTX: eight 32-bit words of state, the length so far,
the unhashed end of the last block), whose bytes can be stored in the database and loaded back.
This uses the libcrypto that hashlib itself is linked against, through ctypes (which lets other
threads run while it hashes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from pathlib import Path

FORMAT = b"sha256-ctx-v1:"


class _Context(ctypes.Structure):
    # openssl/sha.h: typedef struct SHA256state_st {...} SHA256_CTX;
    _fields_ = (
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    )


@functools.cache
def _libcrypto() -> ctypes.CDLL:
    import _hashlib  # noqa: F401  (loads the libcrypto we want to find)

    mapped = Path("/proc/self/maps")
    candidates = []
    if mapped.exists():
        candidates = [
            line.split()[-1]
            for line in mapped.read_text().splitlines()
            if "libcrypto" in line and line.split()[-1].startswith("/")
        ]
    name = candidates[0] if candidates else ctypes.util.find_library("crypto")
    if not name:
        raise OSError("libcrypto (OpenSSL) not found")
    library = ctypes.CDLL(name)
    context = ctypes.POINTER(_Context)
    library.SHA256_Init.argtypes = [context]
    library.SHA256_Update.argtypes = [context, ctypes.c_char_p, ctypes.c_size_t]
    library.SHA256_Final.argtypes = [ctypes.c_char_p, context]
    for function in (library.SHA256_Init, library.SHA256_Update, library.SHA256_Final):
        function.restype = ctypes.c_int
    return library


class ResumableSha256:
    """hashlib.sha256's update() and hexdigest(), plus state(): bytes to resume from later
    (`ResumableSha256(state)`), on any machine of the same architecture."""

    def __init__(self, state: bytes | None = None) -> None:
        self._context = _Context()
        if state is None:
            _libcrypto().SHA256_Init(ctypes.byref(self._context))
            return
        if not state.startswith(FORMAT) or len(state) != len(FORMAT) + ctypes.sizeof(_Context):
            raise ValueError("not a saved SHA-256 state")
        ctypes.memmove(ctypes.byref(self._context), state[len(FORMAT) :], ctypes.sizeof(_Context))

    def update(self, data: bytes) -> None:
        _libcrypto().SHA256_Update(ctypes.byref(self._context), data, len(data))

    def state(self) -> bytes:
        return FORMAT + ctypes.string_at(ctypes.byref(self._context), ctypes.sizeof(_Context))

    def hexdigest(self) -> str:
        finished = _Context.from_buffer_copy(self._context)  # the state itself stays open
        digest = ctypes.create_string_buffer(32)
        _libcrypto().SHA256_Final(digest, ctypes.byref(finished))
        return digest.raw.hex()


def resumable_sha256_available() -> bool:
    try:
        ResumableSha256().update(b"")
    except (OSError, AttributeError):
        return False
    return True
