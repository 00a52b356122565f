#!/bin/sh
# Install Debian's chromium for the browser tests (tests/e2e) when /usr/bin/chromium is
# missing. Playwright drives this browser through executable_path; its own browser
# downloads are never used. Also installs an emoji font when missing, so that the
# screenshots the tests save show the reaction and hand symbols instead of boxes.
# Never fails the build: without chromium the browser tests skip and say why.
CHROMIUM=${CLASSROOM_CHROMIUM:-/usr/bin/chromium}

missing=""
[ -x "$CHROMIUM" ] || missing="chromium"
if command -v fc-list >/dev/null 2>&1 && ! fc-list 2>/dev/null | grep -qi "Noto Color Emoji"; then
    missing="$missing fonts-noto-color-emoji"
fi
[ -n "$missing" ] || exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    if [ ! -x "$CHROMIUM" ]; then
        echo "warning: $CHROMIUM is missing and cannot be installed here (needs root and apt-get);" \
             "the browser tests will be skipped" >&2
    fi
    exit 0
fi

echo "installing Debian packages for the browser tests:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >/dev/null 2>&1; then
    # The font is a nicety: try chromium alone before giving up.
    if [ ! -x "$CHROMIUM" ]; then
        apt-get install -y -qq chromium >/dev/null 2>&1
    fi
fi
if [ ! -x "$CHROMIUM" ]; then
    echo "warning: could not install chromium; the browser tests will be skipped" >&2
fi
exit 0
