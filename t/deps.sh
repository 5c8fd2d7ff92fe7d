#!/bin/sh
# Installs the Debian packages a step needs, and only those missing.
#   t/deps.sh build   compiler, headers, systemd-socket-activate
#   t/deps.sh test    the above plus every program the tests drive
set -eu

build="gcc make libc6-dev pkg-config libsystemd-dev libpam0g-dev libkrb5-dev systemd"
test="$build perl python3 curl ncat xinetd iproute2 util-linux mandoc man-db procps krb5-kdc krb5-user krb5-admin-server python3-gssapi
	passwd libpam-modules libpam-wrapper libnss-wrapper proxychains4
	dante-client socat python3-socks
	clang libfuzzer-14-dev libclang-rt-14-dev
	dpkg-dev debhelper lintian fakeroot adduser git"

case "${1:-}" in
build) want=$build ;;
test) want=$test ;;
*) echo "usage: $0 build|test" >&2; exit 64 ;;
esac

missing=
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
