#!/usr/bin/env bash
# Regenerates the three short spoken clips video.md transcribes (committed, ~560 KB together).
# Needs Debian's espeak-ng and sox; espeak-ng writes 22.05 kHz, sox makes 16 kHz mono 16-bit.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say() {  # say <name> <sentence>
  espeak-ng -v en-us -s 160 -w "$tmp/$1.wav" "$2"
  sox "$tmp/$1.wav" -r 16000 -c 1 -b 16 "$1.wav"
  echo "wrote $(pwd)/$1.wav ($(soxi -D "$1.wav") s)"
}
say intro "Welcome to the rig tour. Today we look at five graphics cards on a mining board."
say cooling "Cooling matters. Cards one and two run hot, so we cap power at one hundred forty watts."
say queue "Finally, the queue. Workers claim tasks, and the brain releases the next ones."
