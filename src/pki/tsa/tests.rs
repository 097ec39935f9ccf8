//! Unit tests of the TSA's encodings.

use super::*;

#[test]
fn failure_bits_are_named_bits_in_der() {
    // badAlg (0): one octet 0x80, 7 unused bits.
    assert_eq!(failure_bits(0).unwrap().to_der().unwrap(), [3, 2, 7, 0x80]);
    // systemFailure (25): four octets, the last 0x40, 6 unused bits.
    assert_eq!(
        failure_bits(25).unwrap().to_der().unwrap(),
        [3, 5, 6, 0, 0, 0, 0x40]
    );
}

#[test]
fn the_fallback_response_is_a_system_failure_rejection() {
    let response = TimeStampResp::from_der(&SYSTEM_FAILURE_RESPONSE).unwrap();
    assert_eq!(response.status.status, 2);
    assert_eq!(response.status.fail_info, Some(failure_bits(25).unwrap()));
}

#[test]
fn the_tst_info_of_a_token_is_read_back() {
    assert!(tst_info_of(b"\x30\x00").is_err());
}

#[test]
fn serials_are_positive_and_sixteen_octets() {
    for _ in 0..100 {
        let serial = random_serial().unwrap();
        assert_eq!(serial.as_bytes().len(), 16);
        assert!(serial.as_bytes()[0] & 0x80 == 0);
    }
}

#[test]
fn the_shipped_policy_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/tsa.toml");
    let policy = TsaPolicy::load(&path).unwrap();
    assert_eq!(policy.oid.to_string(), "1.3.6.1.4.1.32473.10.4.1");
    assert_eq!(policy.accuracy_seconds, 1);
}
