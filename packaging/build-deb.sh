#!/usr/bin/env bash
# Builds the Debian package: target/debian/unithunt_VERSION_ARCH.deb.
# Needs cargo-deb (`cargo install cargo-deb --locked`). The man page and shell completions are
# generated from the binary's own command-line definitions, so they always match it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p unithunt
out=target/release/packaging
mkdir -p "$out"
./target/release/unithunt man | gzip -9n > "$out/unithunt.1.gz"
./target/release/unithunt completions bash > "$out/unithunt.bash"
./target/release/unithunt completions zsh > "$out/_unithunt"
./target/release/unithunt completions fish > "$out/unithunt.fish"
cargo deb -p unithunt --no-build --locked "$@"
