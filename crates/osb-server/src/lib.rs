//! osb-server (in progress).
