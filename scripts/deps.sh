#!/usr/bin/env bash
#  Installs, with apt-get, whatever zmesh needs that this Debian machine lacks:
#  the build tools, the -dev packages of its libraries, and the Python modules
#  the interop test uses. Does nothing when everything is there.
set -euo pipefail

packages=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev
          libcmocka-dev libjansson-dev python3 python3-zmq python3-msgpack)
if [ "${ZMESH_DEPS_EXTRA:-}" != "" ]; then
    read -r -a extra <<<"$ZMESH_DEPS_EXTRA"
    packages+=("${extra[@]}")
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$package")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
