//! The resolved plan: processes in order with their commands, options and verifiers.
