"""What the committed speech clips say, and how much of it a real transcription heard.

Real whisper on a CPU is not bit-identical across machines (the instruction set picks different
int8 kernels), so a test that wants "whisper heard this clip" checks the share of the spoken
words in the transcript, not one exact word: tiny.en on these espeak-ng clips hears 85-100 %
of them; a wrong clip, silence or a stand-in transcript hears almost none.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

CLIPS_SCRIPT = Path(__file__).resolve().parents[2] / "shared" / "plans" / "clips" / "make_clips.sh"
HEARD_ENOUGH = 0.7


def spoken_sentences() -> dict[str, str]:
    """clip name -> the sentence make_clips.sh speaks into it (the script is the one truth)."""
    sentences: dict[str, str] = {}
    for line in CLIPS_SCRIPT.read_text().splitlines():
        if line.startswith("say "):
            _, name, sentence = shlex.split(line)
            sentences[name] = sentence
    return sentences


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def heard_share(spoken: str, transcript: str) -> float:
    """Share of the spoken sentence's distinct words that appear in the transcript."""
    expected = words(spoken)
    return len(expected & words(transcript)) / len(expected)
