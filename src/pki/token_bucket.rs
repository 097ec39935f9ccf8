//! A token bucket in real time (load is real, whatever the service's clock
//! says): what bounds the signatures unauthenticated callers can ask for.

use std::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    size: f64,
}

impl TokenBucket {
    /// Full at first: `size` at once, then `rate` a second.
    pub fn new(rate: f64, size: f64) -> Self {
        Self {
            tokens: size,
            last: Instant::now(),
            rate,
            size,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.size);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_its_size_then_its_rate() {
        let mut bucket = TokenBucket::new(0.0, 3.0);
        assert!(bucket.take() && bucket.take() && bucket.take());
        assert!(!bucket.take());
    }
}
