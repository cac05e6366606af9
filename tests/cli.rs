//! End-to-end tests of the command line: flags, config errors and exit codes.
mod common;
