//! Who may call what: the market's API key, tenant users' JWTs (bound to their
//! tenant), and the superadmin. Guards are extractors.

pub mod api_key;
pub mod console_session;
pub mod jwt;
pub mod password;
pub mod setup;
pub mod superadmin;
pub mod throttle;
pub mod user;
pub mod webhook;

/// Compares two secrets in constant time (length may leak; content does not).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
        assert!(!super::constant_time_eq(b"", b"a"));
    }
}
