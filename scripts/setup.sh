#!/usr/bin/env bash
# Create .venv and install doclake with its dependencies (idempotent; pip's cache makes reruns fast).
# Usage: scripts/setup.sh [extras]   e.g. scripts/setup.sh dev
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "doclake needs Python >= 3.11 (set PYTHON=...)" >&2
  exit 1
fi
# System packages, installed when missing and we may (root + apt): libmagic for unstructured's content
# sniffing; Tesseract with the English and orientation packs for OCR of scans and images, and the Chinese,
# Japanese and Korean packs OCR picks per page by detected script (DOCLAKE_OCR_SCRIPT_DETECT); a CJK font,
# so pdfium can draw PDFs whose CJK fonts are not embedded before they are OCR'd (without one those pages
# render blank); pandoc, which converts RTF, ODT and EPUB to HTML for extraction; Debian's Chromium and its
# matching chromedriver for the console's browser test (tests/e2e/test_console_browser.py).
apt_missing=()
command -v chromium >/dev/null || apt_missing+=(chromium)
command -v chromedriver >/dev/null || apt_missing+=(chromium-driver)
ldconfig -p 2>/dev/null | grep -q libmagic.so.1 || apt_missing+=(libmagic1)
command -v tesseract >/dev/null || apt_missing+=(tesseract-ocr)
for pack in eng osd chi_sim chi_tra jpn jpn_vert kor; do
  [ -n "$(ls /usr/share/tesseract-ocr/*/tessdata/"$pack".traineddata 2>/dev/null)" ] || apt_missing+=("tesseract-ocr-${pack//_/-}")
done
fc-list :lang=zh 2>/dev/null | grep -q . || apt_missing+=(fonts-wqy-microhei)
command -v pandoc >/dev/null || apt_missing+=(pandoc)
if [ ${#apt_missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${apt_missing[@]}" >/dev/null
  else
    echo "doclake: install these system packages (OCR, type sniffing, RTF/ODT/EPUB, the console's browser test): ${apt_missing[*]} (or set DOCLAKE_OCR=off)" >&2
  fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
extras="${1:-}"
target="."
if [ -n "$extras" ]; then target=".[$extras]"; fi
.venv/bin/python -m pip install -q -e "$target"
# Export and quantize the default (onnx-int8) embedding model into its cache now, so the first upload
# does not wait for it (a no-op once cached; `doclake up` checks again for the lake's own backend).
HF_HUB_OFFLINE=1 .venv/bin/doclake prepare-model
