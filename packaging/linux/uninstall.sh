#!/bin/sh
# Remove lesionviewer installed by install.sh. Users' settings, logs and autosaved edits stay in
# their home folders (~/.config/lesionviewer, ~/.cache/lesionviewer, ~/.local/share/lesionviewer,
# ~/.local/state/lesionviewer); edits saved next to photos are never touched.
# DESTDIR as for install.sh.
set -eu
PREFIX=${PREFIX:-/opt/lesionviewer}
D=${DESTDIR:-}
if [ -z "$D" ] && [ "$(id -u)" != 0 ]; then echo "run as root (sudo $0)" >&2; exit 1; fi
case "$PREFIX" in */lesionviewer) ;; *) echo "not removing $PREFIX (unexpected name)" >&2; exit 1 ;; esac
rm -f "$D/usr/share/applications/lesionviewer.desktop" "$D/usr/share/icons/hicolor/scalable/apps/lesionviewer.svg"
for size in 16 32 48 64 128 256 512; do rm -f "$D/usr/share/icons/hicolor/${size}x${size}/apps/lesionviewer.png"; done
if [ "$(readlink "$D/usr/local/bin/lesionviewer" 2>/dev/null)" = "$PREFIX/lesionviewer" ]; then rm -f "$D/usr/local/bin/lesionviewer"; fi
cd /                      # this script may live in the folder it removes
rm -rf "$D$PREFIX"
if [ -z "$D" ]; then
  command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
fi
echo "lesionviewer removed from $D$PREFIX"
