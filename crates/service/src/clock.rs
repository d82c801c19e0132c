//! Time and randomness, injectable, so that code expiries, throttling delays, TOTP steps and
//! the year between public-ID changes are tested by moving a clock instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

/// Wall-clock time in milliseconds since the Unix epoch: the unit everything is stored in
/// (the store defines it, as the type of every row's time).
pub use switchboard_store::Millis;

pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> Millis;
}

pub fn to_datetime(ms: Millis) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Whole seconds from `now` until `deadline`, rounded up (for `Retry-After`).
pub fn secs_until(deadline: Millis, now: Millis) -> u64 {
    u64::try_from((deadline - now + 999).div_euclid(1000)).unwrap_or(0)
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        let now = OffsetDateTime::now_utc();
        i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// The database's clock, read through this machine's: the offset between the two is measured
/// now and then (`crate::cluster`), so every node of a cluster judges expiries (codes,
/// sessions, red envelopes) by one time without a query per reading.
#[derive(Debug, Default)]
pub struct DatabaseTime {
    offset_ms: AtomicI64,
}

impl DatabaseTime {
    pub fn set_offset_ms(&self, offset: Millis) {
        self.offset_ms.store(offset, Ordering::Relaxed);
    }

    pub fn offset_ms(&self) -> Millis {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

impl Clock for DatabaseTime {
    fn now_ms(&self) -> Millis {
        SystemClock.now_ms() + self.offset_ms()
    }
}

/// A clock that moves only when told to; clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Starts at the real time now, so stored dates look plausible.
    pub fn new() -> Self {
        Self(Arc::new(AtomicI64::new(SystemClock.now_ms())))
    }

    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    pub fn set_ms(&self, ms: Millis) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// A source of secure random bytes (codes, tokens, secrets, ids).
pub trait Entropy: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        // The OS generator failing means the machine cannot produce secrets at all; serving
        // predictable codes or tokens would be far worse than stopping.
        #[allow(clippy::expect_used)]
        getrandom::fill(buf).expect("the operating system's random generator failed");
    }
}

/// Helpers over any entropy source.
pub trait EntropyExt: Entropy {
    fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.fill(&mut out);
        out
    }

    /// A uniform integer in `0..bound` by rejection sampling (no modulo bias).
    fn below(&self, bound: u32) -> u32 {
        debug_assert!(bound > 0);
        let zone = u32::MAX - (u32::MAX % bound);
        loop {
            let v = u32::from_le_bytes(self.bytes::<4>());
            if v < zone {
                return v % bound;
            }
        }
    }

    /// `n` random decimal digits.
    fn digits(&self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    /// An identifier: `prefix` + 16 lowercase base32 characters (80 bits).
    fn id(&self, prefix: &str) -> String {
        let raw = self.bytes::<10>();
        format!(
            "{prefix}{}",
            data_encoding::BASE32_NOPAD
                .encode(&raw)
                .to_ascii_lowercase()
        )
    }
}

impl<T: Entropy + ?Sized> EntropyExt for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_digits_and_vary() {
        let a = OsEntropy.digits(6);
        assert_eq!(a.len(), 6);
        assert!(a.chars().all(|c| c.is_ascii_digit()), "{a}");
        let many: std::collections::HashSet<_> = (0..50).map(|_| OsEntropy.digits(6)).collect();
        assert!(many.len() > 40, "codes must not repeat like a counter");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new();
        let t0 = clock.now_ms();
        clock.advance_secs(60);
        assert_eq!(clock.now_ms() - t0, 60_000);
    }
}
