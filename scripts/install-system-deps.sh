#!/usr/bin/env bash
# Install the system packages faxflow needs on Debian/Ubuntu, only those missing.
# As root: runs apt-get. Otherwise: prints the exact command to run and exits 1.
# --test: also what the test suite needs (Chromium, driven headless by the review page's browser test).
set -euo pipefail

need=()
if [ "${1:-}" = "--test" ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
fi
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr)
tessdir=$(ls -d /usr/share/tesseract-ocr/*/tessdata 2>/dev/null | sort | tail -n 1 || true)
[ -n "$tessdir" ] && [ -f "$tessdir/jpn.traineddata" ] || need+=(tesseract-ocr-jpn)
[ -n "$tessdir" ] && [ -f "$tessdir/eng.traineddata" ] || need+=(tesseract-ocr-eng)
[ -n "$tessdir" ] && [ -f "$tessdir/osd.traineddata" ] || need+=(tesseract-ocr-osd)
# the Japanese script model: a second, independently trained reader that free text must agree with
[ -n "$tessdir" ] && [ -f "$tessdir/Japanese.traineddata" ] || need+=(tesseract-ocr-script-jpan)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
command -v fc-list >/dev/null 2>&1 || need+=(fontconfig)
# Japanese fonts: used by the sample generator (several faces on purpose) and the template preview.
[ -f /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf ] || need+=(fonts-ipafont-gothic)
[ -f /usr/share/fonts/opentype/ipafont-mincho/ipam.ttf ] || need+=(fonts-ipafont-mincho)
[ -f /usr/share/fonts/truetype/vlgothic/VL-Gothic-Regular.ttf ] || need+=(fonts-vlgothic)
ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1 || need+=(fonts-noto-cjk)
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || need+=(python3)
"$PY" -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
cmd="apt-get update && apt-get install -y --no-install-recommends ${need[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "faxflow needs these system packages: ${need[*]}" >&2
  echo "Run as root (or with sudo), then run make again:" >&2
  echo "  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "Installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
