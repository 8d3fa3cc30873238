#!/bin/sh
# Install lesionviewer for every user of this computer: the folder this script is in goes to
# /opt/lesionviewer (or $PREFIX), with a menu entry and icon, and `lesionviewer` on the PATH.
# Run as root:   sudo ./install.sh      Remove with:   sudo /opt/lesionviewer/uninstall.sh
# Needs no network and no Python. Runs the bundle's self-test at the end.
# DESTDIR=/some/root stages everything under that folder instead (packagers, tests); the menu
# entry still points at $PREFIX.
set -eu
PREFIX=${PREFIX:-/opt/lesionviewer}
D=${DESTDIR:-}
HERE=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$HERE/lesionviewer" ] || [ ! -d "$HERE/_internal" ]; then
  echo "install.sh must be run from the unpacked lesionviewer folder" >&2; exit 1
fi
if [ -z "$D" ] && [ "$(id -u)" != 0 ]; then echo "run as root (sudo $0)" >&2; exit 1; fi
if [ "$HERE" != "$D$PREFIX" ]; then
  rm -rf "$D$PREFIX.new"
  mkdir -p "$(dirname "$D$PREFIX")"
  cp -a "$HERE" "$D$PREFIX.new"
  rm -rf "$D$PREFIX"        # an earlier version: replaced whole, so no stale library lingers
  mv "$D$PREFIX.new" "$D$PREFIX"
fi
[ -n "$D" ] || chown -R root:root "$PREFIX"
chmod -R go-w,a+rX "$D$PREFIX"  # users run it, nobody but root can change it (or its model)
RES=$D$PREFIX/_internal/resources
mkdir -p "$D/usr/local/bin" "$D/usr/share/applications"
ln -sf "$PREFIX/lesionviewer" "$D/usr/local/bin/lesionviewer"
sed "s#/opt/lesionviewer#$PREFIX#g" "$RES/lesionviewer.desktop" > "$D/usr/share/applications/lesionviewer.desktop"
for size in 16 32 48 64 128 256 512; do
  dir=$D/usr/share/icons/hicolor/${size}x${size}/apps
  mkdir -p "$dir" && cp "$RES/icons/lesionviewer-$size.png" "$dir/lesionviewer.png"
done
mkdir -p "$D/usr/share/icons/hicolor/scalable/apps"
cp "$RES/icons/lesionviewer.svg" "$D/usr/share/icons/hicolor/scalable/apps/lesionviewer.svg"
if [ -z "$D" ]; then
  command -v update-desktop-database >/dev/null && update-desktop-database -q /usr/share/applications || true
  command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q -t /usr/share/icons/hicolor || true
fi
echo "installed in $D$PREFIX; checking it:"
QT_QPA_PLATFORM=offscreen HOME=$(mktemp -d) "$D$PREFIX/lesionviewer" --selftest
