#!/bin/sh
# RUSTC_WORKSPACE_WRAPPER for `make test`: the workspace's own crates are compiled by
# clippy-driver with warnings as errors, so the test build is also the lint of every
# target it builds, instead of a second pass (`cargo clippy` checks every dependency
# again, in its own mode). Dependencies are compiled by plain rustc.
driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
exec "$driver" "$@" -D warnings
