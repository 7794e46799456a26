"""Prompt WAVs: spoken with Debian's espeak-ng at first start, tones when it is missing.

Why generated, not shipped: the voice is a config key and binary audio does not belong in
the repository. Every prompt is 8 kHz mono 16-bit PCM (what the G.711 call legs carry, so
the conference bridge never resamples). espeak-ng writes 22.05 kHz; sox converts, and a
small linear resampler stands in when sox is missing. The tone fallback keeps the UA
usable without any speech synthesiser: distinct pip patterns per prompt, the digits as
1..10 pips (``voice = "tones"`` asks for them). A ``.voice`` stamp file regenerates the set
when the voice changes.
"""

from __future__ import annotations

import array
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("spitwall.challenge.prompts")

RATE = 8000
NAMES_TEXT: dict[str, str] = {
    "intro": "Hello. This number screens unknown callers. To be connected, "
    "please press the following digits on your keypad.",
    "wrong": "Sorry, that was not right.",
    "connecting": "Thank you. Connecting your call.",
    "unavailable": "The person you are calling cannot take your call.",
    "greeting": "The person you are calling is not available. "
    "Please leave a message after the tone.",
    "mailbox_full": "The mailbox of the person you are calling is full.",
    "goodbye": "Goodbye.",
    **{
        f"digit_{d}": w
        for d, w in enumerate(
            ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        )
    },
}
ALL_PROMPTS = (*NAMES_TEXT, "beep")


@dataclass(frozen=True, slots=True)
class PromptSet:
    directory: Path
    durations: dict[str, float]
    spoken: bool
    """False when the tone fallback was used."""

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.wav"


def ensure_prompts(directory: Path, voice: str = "en-us") -> PromptSet:
    """Make sure every prompt WAV exists in ``directory``; generate the missing ones."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / ".voice"
    espeak = shutil.which("espeak-ng") if voice != "tones" else None
    want = voice if espeak else "tones"
    have = stamp.read_text().strip() if stamp.exists() else ""
    if have != want:
        for name in NAMES_TEXT:
            (directory / f"{name}.wav").unlink(missing_ok=True)
    spoken = want != "tones"
    for name in ALL_PROMPTS:
        path = directory / f"{name}.wav"
        if path.exists():
            continue
        if name == "beep":
            write_pcm(path, tone([(1000.0, 0.4)]))
        elif espeak:
            try:
                speak(espeak, NAMES_TEXT[name], voice, path)
            except (OSError, subprocess.SubprocessError, wave.Error, EOFError) as exc:
                log.warning("espeak-ng failed for prompt %s (%s): using tones", name, exc)
                write_pcm(path, fallback_tones(name))
        else:
            write_pcm(path, fallback_tones(name))
    stamp.write_text(want + "\n")
    durations = {name: wav_seconds(directory / f"{name}.wav") for name in ALL_PROMPTS}
    return PromptSet(directory, durations, spoken)


def speak(espeak: str, text: str, voice: str, out: Path) -> None:
    """espeak-ng → WAV at 8 kHz mono 16-bit (sox when present, else our resampler)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(
            [espeak, "-v", voice, "-s", "150", "-w", str(raw), text],
            check=True,
            capture_output=True,
            timeout=30,
        )
        sox = shutil.which("sox")
        if sox:
            subprocess.run(
                [sox, str(raw), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed", str(out)],
                check=True,
                capture_output=True,
                timeout=30,
            )
            return
        with wave.open(str(raw), "rb") as w:
            if w.getsampwidth() != 2:
                raise wave.Error("espeak-ng wrote a non-16-bit WAV")
            samples = array.array("h", w.readframes(w.getnframes()))
            if sys.byteorder == "big":
                samples.byteswap()
            channels, rate = w.getnchannels(), w.getframerate()
        write_pcm(out, resample(samples[::channels], rate, RATE))


def resample(samples: array.array[int], src: int, dst: int) -> array.array[int]:
    """Linear-interpolation resampler: plenty for speech prompts heard over G.711."""
    if src == dst or not samples:
        return array.array("h", samples)
    n = int(len(samples) * dst / src)
    out = array.array("h", bytes(2 * n))
    step = src / dst
    last = len(samples) - 1
    for i in range(n):
        pos = i * step
        j = int(pos)
        frac = pos - j
        a = samples[min(j, last)]
        b = samples[min(j + 1, last)]
        out[i] = int(a + (b - a) * frac)
    return out


def tone(parts: list[tuple[float, float]], amplitude: float = 0.3) -> array.array[int]:
    """Concatenated (frequency Hz, seconds) segments; frequency 0 is silence."""
    out = array.array("h")
    for freq, secs in parts:
        n = int(secs * RATE)
        fade = min(80, n // 4)
        for i in range(n):
            env = min(1.0, i / fade, (n - i) / fade) if fade else 1.0
            v = math.sin(2 * math.pi * freq * i / RATE) if freq else 0.0
            out.append(int(32767 * amplitude * env * v))
    return out


def fallback_tones(name: str) -> array.array[int]:
    if name.startswith("digit_"):
        pips = int(name[-1]) or 10
        return tone([(800.0, 0.09), (0.0, 0.09)] * pips + [(0.0, 0.2)])
    patterns = {
        "intro": [(440.0, 0.3), (0.0, 0.1), (660.0, 0.3), (0.0, 0.4)],
        "wrong": [(300.0, 0.5), (0.0, 0.3)],
        "connecting": [(660.0, 0.2), (880.0, 0.2), (0.0, 0.2)],
        "unavailable": [(480.0, 0.3), (620.0, 0.3), (0.0, 0.3)],
        "greeting": [(520.0, 0.3), (0.0, 0.2), (520.0, 0.3), (0.0, 0.3)],
        "mailbox_full": [(300.0, 0.3), (0.0, 0.1), (300.0, 0.3), (0.0, 0.3)],
        "goodbye": [(660.0, 0.2), (440.0, 0.3), (0.0, 0.2)],
    }
    return tone(patterns.get(name, [(500.0, 0.3)]))


def write_pcm(path: Path, samples: array.array[int]) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # workers may generate concurrently
    data = array.array("h", samples)
    if sys.byteorder == "big":
        data.byteswap()
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(data.tobytes())
    tmp.replace(path)


def wav_seconds(path: Path) -> float:
    """Duration of a PCM WAV from its header (0.0 for a missing or unreadable file)."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / float(w.getframerate() or RATE)
    except (OSError, wave.Error, EOFError):
        return 0.0
