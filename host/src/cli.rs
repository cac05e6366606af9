//! Command-line flags (clap), defined in one place.
