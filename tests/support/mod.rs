//! Helpers shared by the integration tests.
// Each test binary uses a different subset of these helpers; `expect` would fail
// in the binaries that happen to use them all.
#![allow(dead_code, unused_imports, unused_macros)]
// Test helpers fail loudly: an unwrap here is an assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// `pub` here means "for the test binaries", which reach the helpers through
// their private `mod support`: every binary has some of them unreachable.
#![expect(unreachable_pub, reason = "helpers shared by the test binaries")]

pub mod app;
pub mod back_office;
pub mod browser;
pub mod ca;
pub mod db;
pub mod fake_provider;
pub mod hsm;
pub mod idp;
pub mod journal;
pub mod pades;
pub mod pdf_bombs;
pub mod service;
pub mod smtp;
pub mod test_ca;
pub mod tls_session;
pub mod tools;
