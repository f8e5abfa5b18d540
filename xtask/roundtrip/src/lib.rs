//! Round-trip tests (in progress).
