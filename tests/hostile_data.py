"""Small files that declare huge contents (resource bombs), and a memory cap to run them under.

A bomb that gets past a limit asks for tens of gigabytes; under :func:`memory_cap` that is a
``MemoryError`` at once (a test failure) instead of a machine brought down by swapping.
"""

from __future__ import annotations

import contextlib
import resource
import struct
import wave
import zlib
from pathlib import Path

import numpy as np

GIB = 1 << 30


def _address_space() -> int | None:
    status = Path("/proc/self/status")
    lines = status.read_text().splitlines() if status.exists() else []
    return next((int(line.split()[1]) * 1024 for line in lines if line.startswith("VmSize:")), None)


@contextlib.contextmanager
def memory_cap(extra: int = 2 * GIB):
    """Let this process map at most ``extra`` more bytes of memory inside the block (Linux; elsewhere no cap)."""
    mapped = _address_space()
    if mapped is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = mapped + extra
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def write_wav(path: Path, rate: int, frames: int) -> Path:
    """A 16-bit mono WAV of ``frames`` silent frames whose header says ``rate`` Hz (0 allowed)."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(max(rate, 1))
        wav.writeframes(np.zeros(frames, "<i2").tobytes())
    if rate < 1:  # wave refuses to write it: patch the header's sample rate field
        data = bytearray(path.read_bytes())
        data[24:28] = struct.pack("<I", rate)
        path.write_bytes(bytes(data))
    return path


def write_png(path: Path, width: int, height: int) -> Path:
    """A black 1-bit greyscale PNG: a few kilobytes on disk for hundreds of megapixels."""
    row = b"\0" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def nested_json(depth: int) -> str:
    """A JSON list nested ``depth`` deep."""
    return "[" * depth + "]" * depth
