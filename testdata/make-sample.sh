#!/bin/sh
# Regenerates testdata/sample.iso, the image the README's first command uses.
set -e
cd "$(dirname "$0")/.."
go run ./internal/gensample -o testdata/sample.iso -block-size 512
