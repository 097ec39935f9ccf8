//! Helpers shared by the integration tests.
#![allow(dead_code, unused_imports)] // each test crate uses a different part

pub mod hsm;
pub mod tools;
