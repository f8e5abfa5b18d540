//! osb-client (in progress).
