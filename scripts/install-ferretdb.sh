#!/usr/bin/env bash
# Build FerretDB (the MongoDB-protocol server used by `make run` and `make test`) into $1.
#
# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@VERSION` yields a binary that panics at
# start because the module ships an empty build/version/version.txt. FerretDB's own error message
# tells you to write the version into that file, so this script builds the same module from a
# writable copy of the Go module cache with that file filled in.
set -euo pipefail

target=$(realpath -m "${1:?usage: install-ferretdb.sh TARGET_BINARY}")
version=v1.24.2
module=github.com/FerretDB/FerretDB

export GOTOOLCHAIN=local GOFLAGS=-mod=mod
source_dir=$(go mod download -json "$module@$version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
work_dir=$(mktemp -d)
trap 'rm -rf "$work_dir"' EXIT

cp -r "$source_dir" "$work_dir/ferretdb"
chmod -R u+w "$work_dir/ferretdb"
echo "$version" > "$work_dir/ferretdb/build/version/version.txt"
mkdir -p "$(dirname "$target")"
(cd "$work_dir/ferretdb" && go build -o "$target" ./cmd/ferretdb)
echo "installed FerretDB $version at $target"
