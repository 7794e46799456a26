"""Checking an uploaded voicemail greeting before anything plays it.

Why so strict: the challenge UA plays the file into calls through pjsua2's WAV player, which
wants plain PCM at the telephone rate; a file that is anything else fails during a call,
when nobody can fix it. So the upload is parsed here (RIFF structure, ``fmt`` and ``data``
chunks, declared sizes against the real size) and refused with a message that says what to
convert, e.g. ``sox in.wav -r 8000 -c 1 -b 16 greeting.wav``.
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

CONVERT_HINT = "convert it with: sox input.wav -r 8000 -c 1 -b 16 greeting.wav"
RATES = (8000, 16000)


@dataclass(frozen=True, slots=True)
class WavInfo:
    rate: int
    channels: int
    sample_bytes: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def check_wav(data: bytes, max_seconds: float) -> WavInfo | str:
    """The WAV's format, or a message saying why it cannot be a greeting."""
    if len(data) < 44:
        return "not a WAV file (too short for a RIFF/WAVE header)"
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return "not a WAV file (no RIFF/WAVE header)"
    riff_size = struct.unpack_from("<I", data, 4)[0]
    if riff_size + 8 > len(data) + 1:  # +1: some writers forget the final pad byte
        return f"truncated WAV: header says {riff_size + 8} bytes, file has {len(data)}"
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            info = WavInfo(w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())
    except (wave.Error, EOFError, struct.error) as exc:
        return f"unreadable WAV ({exc}); it must be 16-bit PCM; {CONVERT_HINT}"
    problems = []
    if info.channels != 1:
        problems.append(f"{info.channels} channels (need mono)")
    if info.sample_bytes != 2:
        problems.append(f"{8 * info.sample_bytes}-bit samples (need 16-bit)")
    if info.rate not in RATES:
        problems.append(f"{info.rate} Hz (need 8000 or 16000 Hz)")
    if problems:
        return f"unsupported WAV format: {', '.join(problems)}; {CONVERT_HINT}"
    if info.frames == 0:
        return "the WAV holds no audio"
    if info.seconds > max_seconds:
        return f"greeting is {info.seconds:.1f} s long; at most {max_seconds:g} s"
    return info
