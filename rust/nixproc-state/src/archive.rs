//! SKELETON — deterministic tar of a directory tree; safe extraction into
//! a fresh staging directory (no absolute paths, no `..`, no links
//! escaping the stage).
