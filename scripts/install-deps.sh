#!/usr/bin/env bash
# Installs what building kinlet needs on Debian 12 (bookworm), starting from a minbase system.
#   scripts/install-deps.sh        library + examples: compiler, cmake, ninja, abseil, xxhash, OpenSSL
#   scripts/install-deps.sh test   also tests (real AWS clients, node), sanitizer/clang builds and benchmarks
# Does no apt work at all when every package is already installed (so it runs as any user then);
# otherwise needs root (or sudo).
set -euo pipefail

packages=(g++ cmake ninja-build pkg-config libabsl-dev libxxhash-dev libssl-dev ca-certificates
  zlib1g-dev libsimdjson-dev libboost-dev libnghttp2-dev libcurl4-openssl-dev libsqlite3-dev)
case "${1:-}" in
  "") ;;
  test)
    packages+=(catch2 libbenchmark-dev libconcurrentqueue-dev clang-14 clang-format-14
      libclang-rt-14-dev)
    # Real-client tests (tests/clients/): Debian's boto3 and AWS CLI, node for the JavaScript SDK
    # and kinesalite (npm ci from tests/clients/package-lock.json at test time), CBOR fixtures,
    # HTTP/2 and load tools.
    packages+=(python3-boto3 awscli python3-cbor2 nodejs curl nghttp2-client wrk)
    # Debian's npm, unless a node that bundles its own npm is installed (NodeSource's nodejs
    # provides and conflicts with Debian's npm package).
    command -v npm >/dev/null 2>&1 || packages+=(npm)
    ;;
  *)
    echo "usage: $0 [test]" >&2
    exit 2
    ;;
esac

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  [[ $status == ii* ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=()
if ((EUID != 0)); then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "install-deps: missing packages (${missing[*]}) and not root; run as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
