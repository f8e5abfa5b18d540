//! JSON Schema support (in progress).
