//! Unit tests of the outbound sources.
