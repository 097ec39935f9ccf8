//! The seal service's unit tests.

use super::*;

#[test]
fn levels_parse_by_their_etsi_names() {
    assert_eq!("B-LT".parse::<Level>(), Ok(Level::BLt));
    assert_eq!(Level::BLta.name(), "B-LTA");
    assert!("b-b".parse::<Level>().is_err());
    assert!(Level::BB < Level::BT && Level::BT < Level::BLt);
}
