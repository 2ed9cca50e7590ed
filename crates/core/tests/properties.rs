//! Property tests for the parsers webhookd owns: ids, durations, timestamps, the signature
//! header and destination URLs. Hostile input must give an error, never a panic, and what the
//! code writes it must read back.

use std::time::Duration;

use proptest::prelude::*;
use webhookd_core::signing::{Secret, signature_header, verify};
use webhookd_core::time::{
    format_duration, format_timestamp, from_unix_ms, parse_duration, parse_timestamp,
};
use webhookd_core::validate;
use webhookd_core::{AppId, EndpointId, MessageId};

proptest! {
    #[test]
    fn ids_parse_any_text_without_panicking(text in "\\PC{0,64}") {
        let _ = text.parse::<MessageId>();
        let _ = text.parse::<EndpointId>();
        let _ = text.parse::<AppId>();
    }

    #[test]
    fn ids_read_back_and_keep_their_kind(_seed in 0u8..8) {
        let id = MessageId::new();
        prop_assert_eq!(id.as_str().parse::<MessageId>().unwrap(), id.clone());
        prop_assert!(id.as_str().parse::<EndpointId>().is_err());
    }

    #[test]
    fn durations_parse_any_text_without_panicking(text in "\\PC{0,32}") {
        let _ = parse_duration(&text);
    }

    #[test]
    fn durations_read_back(ms in 0u64..(400 * 24 * 3600 * 1000)) {
        let duration = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(duration)).unwrap(), duration);
    }

    #[test]
    fn timestamps_parse_any_text_without_panicking(text in "\\PC{0,40}") {
        let _ = parse_timestamp(&text);
    }

    #[test]
    fn timestamps_read_back(ms in 0i64..253_402_300_799_000) {
        let at = from_unix_ms(ms);
        prop_assert_eq!(parse_timestamp(&format_timestamp(at)).unwrap(), at);
    }

    #[test]
    fn signatures_verify_what_was_signed(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        id in "msg_[0-9A-Z]{26}",
        timestamp in 0i64..4_000_000_000,
    ) {
        let (current, retired) = (Secret::generate(), Secret::generate());
        let header = signature_header([&current, &retired], &id, timestamp, &body);
        for secret in [&current, &retired] {
            prop_assert!(verify(secret, &id, &timestamp.to_string(), &header, &body, timestamp).is_ok());
        }
        let mut tampered = body.clone();
        tampered.push(b'x');
        prop_assert!(verify(&current, &id, &timestamp.to_string(), &header, &tampered, timestamp).is_err());
    }

    #[test]
    fn signature_headers_of_any_shape_never_panic(header in "\\PC{0,200}", timestamp in "\\PC{0,20}") {
        let secret = Secret::generate();
        let _ = verify(&secret, "msg_x", &timestamp, &header, b"{}", 0);
    }

    #[test]
    fn secrets_parse_any_text_without_panicking(text in "\\PC{0,100}") {
        let _ = Secret::parse(&text);
    }

    #[test]
    fn destinations_accept_only_http_with_a_host(text in "\\PC{0,80}") {
        if let Ok(url) = validate::destination(&text) {
            prop_assert!(matches!(url.scheme(), "http" | "https"));
            prop_assert!(url.host_str().is_some_and(|host| !host.is_empty()));
        }
    }

    #[test]
    fn destinations_of_url_shape_never_panic(
        scheme in "(http|https|ftp|file|javascript)",
        host in "[a-z0-9.\\-\\[\\]:]{0,30}",
        path in "[ -~]{0,40}",
    ) {
        let _ = validate::destination(&format!("{scheme}://{host}/{path}"));
    }

    #[test]
    fn uids_and_names_never_panic(text in "\\PC{0,300}") {
        let _ = validate::uid(&text);
        let _ = validate::name(&text);
    }
}
