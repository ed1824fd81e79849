//! The schedule of `scale --every`: rounds every `every`, each after a random
//! delay of up to `jitter`, until a stop flag (SIGTERM/SIGINT) or a number of
//! rounds. The schedule reads the stop flag between rounds; the round in
//! progress sees it too (its waits on Azure end, it sends no further write
//! and is recorded), so the loop ends promptly. Time and sleeping come from a
//! [`Pacer`], so the schedule is tested with a paused clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Time, sleep and randomness for the schedule.
pub trait Pacer {
    /// Time since an arbitrary start.
    fn elapsed(&self) -> Duration;
    /// Sleep until `elapsed() >= deadline` or `stop` is set, whichever is first.
    fn sleep_until(&mut self, deadline: Duration, stop: &AtomicBool);
    /// A delay in `[0, max]`.
    fn jitter(&mut self, max: Duration) -> Duration;
}

/// The real clock: sleeps in slices of at most 100 ms so a signal stops it promptly.
pub struct RealPacer {
    start: std::time::Instant,
    rng: rand::rngs::StdRng,
}

impl RealPacer {
    pub fn new() -> Self {
        RealPacer {
            start: std::time::Instant::now(),
            rng: <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng(),
        }
    }
}

impl Default for RealPacer {
    fn default() -> Self {
        Self::new()
    }
}

impl Pacer for RealPacer {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
    fn sleep_until(&mut self, deadline: Duration, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            let left = deadline.saturating_sub(self.elapsed());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
    fn jitter(&mut self, max: Duration) -> Duration {
        Duration::from_millis(rand::Rng::random_range(
            &mut self.rng,
            0..=max.as_millis() as u64,
        ))
    }
}

/// How the schedule ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub rounds: u64,
    pub failed: u64,
    pub last_failed: bool,
    pub by_signal: bool,
}

/// Run `round(k)` (k = 1, 2, ...) on the schedule. Round k is due at
/// `(k - 1) * every` plus its jitter; a round that overruns delays the next
/// one, which then starts at once. A failed round (`false`) is counted and
/// the schedule goes on.
pub fn run_rounds(
    every: Duration,
    jitter: Duration,
    max_rounds: Option<u64>,
    stop: &AtomicBool,
    pacer: &mut impl Pacer,
    mut round: impl FnMut(u64) -> bool,
) -> Ended {
    let (mut k, mut failed, mut last_failed) = (0u64, 0u64, false);
    loop {
        k += 1;
        let due = every * (k - 1) as u32 + pacer.jitter(jitter);
        pacer.sleep_until(due, stop);
        if stop.load(Ordering::SeqCst) {
            k -= 1;
            break;
        }
        let ok = round(k);
        last_failed = !ok;
        if !ok {
            failed += 1;
        }
        if max_rounds.is_some_and(|n| k >= n) || stop.load(Ordering::SeqCst) {
            break;
        }
    }
    Ended {
        rounds: k,
        failed,
        last_failed,
        by_signal: stop.load(Ordering::SeqCst),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    /// A pacer whose clock the rounds advance (work takes time).
    struct Shared {
        now: std::cell::Cell<Duration>,
        jitter: Duration,
    }

    impl Pacer for &Shared {
        fn elapsed(&self) -> Duration {
            self.now.get()
        }
        fn sleep_until(&mut self, deadline: Duration, _stop: &AtomicBool) {
            self.now.set(self.now.get().max(deadline));
        }
        fn jitter(&mut self, max: Duration) -> Duration {
            self.jitter.min(max)
        }
    }

    #[test]
    fn a_paused_clock_shows_the_schedule_an_overrun_and_that_failures_do_not_stop_it() {
        let clock = Shared {
            now: std::cell::Cell::new(Duration::ZERO),
            jitter: Duration::from_secs(7),
        };
        let stop = AtomicBool::new(false);
        let mut starts = Vec::new();
        let work = [
            Duration::from_secs(5),
            12 * MIN,
            Duration::from_secs(5),
            Duration::from_secs(5),
        ];
        let ended = run_rounds(
            10 * MIN,
            Duration::from_secs(30),
            Some(4),
            &stop,
            &mut &clock,
            |k| {
                starts.push(clock.now.get());
                clock.now.set(clock.now.get() + work[(k - 1) as usize]);
                k != 2 // round 2 fails
            },
        );
        let s = |m: u64, sec: u64| Duration::from_secs(m * 60 + sec);
        // Due at 0, 10, 20, 30 minutes plus 7 s of jitter; round 2 ran 12 minutes,
        // so round 3 starts at once when it ends (22:07) and round 4 is on time.
        assert_eq!(starts, [s(0, 7), s(10, 7), s(22, 7), s(30, 7)]);
        assert_eq!(
            ended,
            Ended {
                rounds: 4,
                failed: 1,
                last_failed: false,
                by_signal: false
            }
        );
    }

    #[test]
    fn a_stop_during_a_round_lets_the_round_finish_and_ends_the_schedule() {
        let clock = Shared {
            now: std::cell::Cell::new(Duration::ZERO),
            jitter: Duration::ZERO,
        };
        let stop = AtomicBool::new(false);
        let mut finished = Vec::new();
        let ended = run_rounds(10 * MIN, Duration::ZERO, None, &stop, &mut &clock, |k| {
            if k == 3 {
                stop.store(true, Ordering::SeqCst); // SIGTERM arrives mid-round
            }
            clock.now.set(clock.now.get() + MIN);
            finished.push(k); // the round's write happens after the signal
            true
        });
        assert_eq!(finished, [1, 2, 3]);
        assert_eq!(
            ended,
            Ended {
                rounds: 3,
                failed: 0,
                last_failed: false,
                by_signal: true
            }
        );
    }

    #[test]
    fn a_stop_while_waiting_starts_no_further_round() {
        let clock = Shared {
            now: std::cell::Cell::new(Duration::ZERO),
            jitter: Duration::ZERO,
        };
        let stop = AtomicBool::new(true);
        let ended = run_rounds(MIN, Duration::ZERO, None, &stop, &mut &clock, |_| {
            panic!("no round after a stop")
        });
        assert_eq!(ended.rounds, 0);
        assert!(ended.by_signal);
    }
}
