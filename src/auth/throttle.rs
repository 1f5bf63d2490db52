//! Login throttling per tenant and email: a keyed GCRA limiter (governor), 10 attempts
//! a minute by default, answered with 429 and `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::Error;

pub struct LoginThrottle {
    limiter: RateLimiter<(String, String), DefaultKeyedStateStore<(String, String)>, DefaultClock>,
    clock: DefaultClock,
}

impl LoginThrottle {
    pub fn per_minute(n: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(n.max(1)).expect("non-zero"));
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one attempt for `(tenant, email)`, refusing it past the quota.
    pub fn check(&self, tenant: &str, email: &str) -> Result<(), Error> {
        let key = (tenant.to_owned(), email.trim().to_lowercase());
        match self.limiter.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait: Duration = not_until.wait_time_from(self.clock.now());
                Err(Error::TooManyRequests {
                    detail: "Too many login attempts; try again later".into(),
                    retry_after_secs: wait.as_secs().max(1),
                })
            }
        }
    }

    /// Forgets keys whose quota has fully recovered, bounding memory.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_attempt_in_a_minute_is_refused() {
        let t = LoginThrottle::per_minute(10);
        for _ in 0..10 {
            t.check("univ_8", "a@b.kr").unwrap();
        }
        match t.check("univ_8", "A@B.kr ") {
            Err(Error::TooManyRequests {
                retry_after_secs, ..
            }) => assert!((1..=60).contains(&retry_after_secs)),
            other => panic!("expected 429, got {other:?}"),
        }
        // Other emails and other tenants have their own quota.
        t.check("univ_8", "c@d.kr").unwrap();
        t.check("univ_9", "a@b.kr").unwrap();
    }
}
