//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): `webhook-id`,
//! `webhook-timestamp` (±5 minutes) and `webhook-signature`, a space-separated list of
//! `v1,<base64 HMAC-SHA256>` so the sender can sign with an old and a new key while
//! rotating. The HMAC is the `standardwebhooks` crate's; this module adds what the crate
//! leaves out: several receiving secrets (rotation on our side), an injectable clock
//! (so the specification's test vector can be checked) and reasons a caller can act on.
//! It depends on nothing of the crate: `config` checks `WEBHOOK_SIGNING_SECRET` with it
//! at start-up, and the webhook guard (`auth::webhook`) verifies deliveries with it.

use axum::http::HeaderMap;
use standardwebhooks::Webhook;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// How far `webhook-timestamp` may be from our clock, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Shortest signing key accepted, in bytes (the specification asks senders for 24).
const MIN_KEY_BYTES: usize = 16;

/// Longest `webhook-id` accepted.
pub const MAX_ID_LEN: usize = 255;

/// Why a signing secret was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidSecret {
    #[error("expected whsec_ followed by base64")]
    NotBase64,
    #[error("the key is shorter than {MIN_KEY_BYTES} bytes")]
    TooShort,
    #[error("no secret given")]
    Empty,
}

/// Why a delivery's signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("webhook-timestamp is more than {TOLERANCE_SECS} seconds from the server's clock")]
    TimestampOutOfRange,
    #[error("no signature matches")]
    NoMatch,
}

impl SignatureError {
    /// The machine code of our error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TimestampOutOfRange => "webhook_timestamp_out_of_range",
            _ => "invalid_webhook_signature",
        }
    }
}

/// A delivery whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub id: String,
    /// `webhook-timestamp`: when this attempt was sent (not when the event happened).
    pub timestamp: i64,
}

/// The receiving secrets: `WEBHOOK_SIGNING_SECRET`, which may list several
/// (space or comma separated) while the market rotates its key.
pub struct Verifier {
    keys: Vec<Webhook>,
}

impl Verifier {
    pub fn from_secrets(list: &str) -> Result<Self, InvalidSecret> {
        let keys = list
            .split([' ', ',', '\n', '\t'])
            .filter(|s| !s.is_empty())
            .map(key)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(InvalidSecret::Empty);
        }
        Ok(Self { keys })
    }

    /// Verifies against the current time.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<Signed, SignatureError> {
        self.verify_at(headers, body, chrono::Utc::now().timestamp())
    }

    /// Verifies as if the time were `now` (unix seconds).
    pub fn verify_at(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<Signed, SignatureError> {
        let id = header(headers, HEADER_ID)?;
        if !valid_id(id) {
            return Err(SignatureError::Malformed(HEADER_ID));
        }
        let ts_raw = header(headers, HEADER_TIMESTAMP)?;
        let timestamp: i64 = ts_raw
            .parse()
            .map_err(|_| SignatureError::Malformed(HEADER_TIMESTAMP))?;
        let sigs = header(headers, HEADER_SIGNATURE)?;
        if (now - timestamp).abs() > TOLERANCE_SECS {
            return Err(SignatureError::TimestampOutOfRange);
        }
        // Every (key, signature) pair is compared; any match accepts.
        let given: Vec<&[u8]> = sigs
            .split(' ')
            .filter_map(|s| s.split_once(','))
            .filter(|(version, _)| *version == "v1")
            .map(|(_, sig)| sig.as_bytes())
            .collect();
        let mut matched = false;
        for key in &self.keys {
            // `sign` fails only for a body that is not UTF-8, which no sender signs.
            let expected = key
                .sign(id, timestamp, body)
                .map_err(|_| SignatureError::NoMatch)?;
            let expected = expected.split_once(',').map_or("", |(_, s)| s).as_bytes();
            for sig in &given {
                matched |= !sig.is_empty() && constant_time_eq(sig, expected);
            }
        }
        if matched {
            Ok(Signed {
                id: id.to_owned(),
                timestamp,
            })
        } else {
            Err(SignatureError::NoMatch)
        }
    }
}

/// `auth::constant_time_eq`, here so this module stands alone below `config`.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Signs a delivery as the market does: the value of `webhook-signature`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> anyhow::Result<String> {
    let key = key(secret).map_err(|e| anyhow::anyhow!("invalid signing secret: {e}"))?;
    key.sign(id, timestamp, body)
        .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))
}

/// Checks one `whsec_…` secret.
pub fn check_secret(secret: &str) -> Result<(), InvalidSecret> {
    key(secret).map(|_| ())
}

fn key(secret: &str) -> Result<Webhook, InvalidSecret> {
    use base64::Engine;
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| InvalidSecret::NotBase64)?;
    if bytes.len() < MIN_KEY_BYTES {
        return Err(InvalidSecret::TooShort);
    }
    Webhook::from_bytes(bytes).map_err(|_| InvalidSecret::NotBase64)
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    headers
        .get(name)
        .ok_or(SignatureError::Missing(name))?
        .to_str()
        .map_err(|_| SignatureError::Malformed(name))
}

/// A usable delivery id: 1 to 255 visible ASCII characters.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    // The Standard Webhooks test vector (the reference libraries' signing test).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const PAYLOAD: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER_ID, HeaderValue::from_str(id).unwrap());
        h.insert(HEADER_TIMESTAMP, HeaderValue::from(ts));
        h.insert(HEADER_SIGNATURE, HeaderValue::from_str(sig).unwrap());
        h
    }

    fn verifier() -> Verifier {
        Verifier::from_secrets(SECRET).unwrap()
    }

    #[test]
    fn signing_reproduces_the_test_vector() {
        assert_eq!(sign(SECRET, MSG_ID, TIMESTAMP, PAYLOAD).unwrap(), SIGNATURE);
        // Without the prefix the secret is the same key.
        assert_eq!(
            sign(&SECRET["whsec_".len()..], MSG_ID, TIMESTAMP, PAYLOAD).unwrap(),
            SIGNATURE
        );
        // The crate's own vector, too.
        assert_eq!(
            sign(
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            )
            .unwrap(),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn the_test_vector_verifies_at_its_own_time() {
        let h = headers(MSG_ID, TIMESTAMP, SIGNATURE);
        let signed = verifier().verify_at(&h, PAYLOAD, TIMESTAMP + 10).unwrap();
        assert_eq!(signed.id, MSG_ID);
        assert_eq!(signed.timestamp, TIMESTAMP);
    }

    #[test]
    fn a_bare_v1_comma_fails() {
        for sig in [
            "v1,",
            "v1",
            "",
            " ",
            "v1, ",
            "v1,g0hM9SsE",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            let h = headers(MSG_ID, TIMESTAMP, sig);
            assert_eq!(
                verifier().verify_at(&h, PAYLOAD, TIMESTAMP),
                Err(SignatureError::NoMatch),
                "{sig:?}"
            );
        }
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let sig =
            format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1, {SIGNATURE} v1a,xyz");
        let h = headers(MSG_ID, TIMESTAMP, &sig);
        assert!(verifier().verify_at(&h, PAYLOAD, TIMESTAMP).is_ok());
    }

    #[test]
    fn any_of_several_secrets_may_match() {
        let v =
            Verifier::from_secrets(&format!("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD, {SECRET}"))
                .unwrap();
        let h = headers(MSG_ID, TIMESTAMP, SIGNATURE);
        assert!(v.verify_at(&h, PAYLOAD, TIMESTAMP).is_ok());
        let other = Verifier::from_secrets("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            other.verify_at(&h, PAYLOAD, TIMESTAMP),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn a_changed_body_id_or_timestamp_fails() {
        let v = verifier();
        let h = headers(MSG_ID, TIMESTAMP, SIGNATURE);
        assert!(
            v.verify_at(&h, br#"{"test": 2432232315}"#, TIMESTAMP)
                .is_err()
        );
        let h = headers("msg_other", TIMESTAMP, SIGNATURE);
        assert!(v.verify_at(&h, PAYLOAD, TIMESTAMP).is_err());
        let h = headers(MSG_ID, TIMESTAMP + 1, SIGNATURE);
        assert!(v.verify_at(&h, PAYLOAD, TIMESTAMP).is_err());
    }

    #[test]
    fn timestamps_outside_five_minutes_fail_either_way() {
        let v = verifier();
        let h = headers(MSG_ID, TIMESTAMP, SIGNATURE);
        assert!(v.verify_at(&h, PAYLOAD, TIMESTAMP + 300).is_ok());
        assert!(v.verify_at(&h, PAYLOAD, TIMESTAMP - 300).is_ok());
        for now in [TIMESTAMP + 301, TIMESTAMP - 301] {
            assert_eq!(
                v.verify_at(&h, PAYLOAD, now),
                Err(SignatureError::TimestampOutOfRange)
            );
        }
    }

    #[test]
    fn missing_and_malformed_headers_fail() {
        let v = verifier();
        for name in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
            let mut h = headers(MSG_ID, TIMESTAMP, SIGNATURE);
            h.remove(name);
            assert_eq!(
                v.verify_at(&h, PAYLOAD, TIMESTAMP),
                Err(SignatureError::Missing(name))
            );
        }
        let mut h = headers(MSG_ID, TIMESTAMP, SIGNATURE);
        h.insert(HEADER_TIMESTAMP, HeaderValue::from_static("soon"));
        assert_eq!(
            v.verify_at(&h, PAYLOAD, TIMESTAMP),
            Err(SignatureError::Malformed(HEADER_TIMESTAMP))
        );
        let h = headers(&"x".repeat(256), TIMESTAMP, SIGNATURE);
        assert_eq!(
            v.verify_at(&h, PAYLOAD, TIMESTAMP),
            Err(SignatureError::Malformed(HEADER_ID))
        );
    }

    #[test]
    fn the_crate_s_own_verify_agrees() {
        let now = chrono::Utc::now().timestamp();
        let sig = sign(SECRET, MSG_ID, now, PAYLOAD).unwrap();
        let h = headers(MSG_ID, now, &sig);
        Webhook::new(SECRET).unwrap().verify(PAYLOAD, &h).unwrap();
        assert!(verifier().verify(&h, PAYLOAD).is_ok());
    }

    #[test]
    fn weak_or_malformed_secrets_are_refused() {
        assert_eq!(
            check_secret("whsec_not base64!").unwrap_err(),
            InvalidSecret::NotBase64
        );
        assert_eq!(check_secret("whsec_").unwrap_err(), InvalidSecret::TooShort);
        assert_eq!(
            check_secret("whsec_c2hvcnQ=").unwrap_err(),
            InvalidSecret::TooShort
        );
        assert!(matches!(
            Verifier::from_secrets(" , "),
            Err(InvalidSecret::Empty)
        ));
        assert!(check_secret(SECRET).is_ok());
    }
}
