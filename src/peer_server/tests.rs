//! Unit tests of the peer-data server (UPSTREAM_TESTS items 3–7, every
//! validation error and every quirk switch), on the fake world.
