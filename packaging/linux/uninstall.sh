#!/bin/sh
# Remove lesionviewer installed by install.sh. Users' settings, logs and autosaved edits stay in
# their home folders (~/.config/lesionviewer, ~/.cache/lesionviewer, ~/.local/share/lesionviewer,
# ~/.local/state/lesionviewer); edits saved next to photos are never touched.
set -eu
PREFIX=${PREFIX:-/opt/lesionviewer}
if [ "$(id -u)" != 0 ]; then echo "run as root (sudo $0)" >&2; exit 1; fi
rm -f /usr/share/applications/lesionviewer.desktop /usr/share/icons/hicolor/scalable/apps/lesionviewer.svg
for size in 16 32 48 64 128 256 512; do rm -f "/usr/share/icons/hicolor/${size}x${size}/apps/lesionviewer.png"; done
if [ "$(readlink /usr/local/bin/lesionviewer 2>/dev/null)" = "$PREFIX/lesionviewer" ]; then rm -f /usr/local/bin/lesionviewer; fi
case "$PREFIX" in */lesionviewer) rm -rf "$PREFIX" ;; *) echo "not removing $PREFIX (unexpected name)" >&2; exit 1 ;; esac
command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
echo "lesionviewer removed from $PREFIX"
