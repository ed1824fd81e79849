//! One round of `scale` as the shell runs it: its limits on Azure (the
//! longest single wait, the deadline, the stop flag of SIGTERM/SIGINT) and
//! the journal of the writes it sent, for its decision record.
//!
//! The round is current for the thread that runs it (rounds run one at a
//! time, each on the thread that started it), so the wiring that opens the
//! ARM client ([`super::inputs::arm_client`]) picks it up without every
//! planning function passing it along.

use crate::arm::{Journal, RunLimits};
use std::cell::RefCell;
use std::sync::Arc;

/// The limits and the journal of the running round.
#[derive(Debug, Clone)]
pub struct Round {
    pub limits: RunLimits,
    pub journal: Arc<Journal>,
}

thread_local! {
    static CURRENT: RefCell<Option<Round>> = const { RefCell::new(None) };
}

/// Runs `f` with `round` current on this thread (and none after, even if
/// `f` panics).
pub fn with<T>(round: Round, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<Round>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.borrow_mut().replace(round));
    let _reset = Reset(previous);
    f()
}

/// The running round, if any (a library caller outside `scale` has none:
/// its clients get the default limits and a journal of their own).
pub fn current() -> Option<Round> {
    CURRENT.with(|c| c.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_is_current_only_while_it_runs() {
        assert!(current().is_none());
        let round = Round {
            limits: RunLimits::default(),
            journal: Arc::new(Journal::default()),
        };
        let seen = with(round, || current().is_some());
        assert!(seen);
        assert!(current().is_none());
        let _ = std::panic::catch_unwind(|| {
            with(
                Round {
                    limits: RunLimits::default(),
                    journal: Arc::new(Journal::default()),
                },
                || panic!("a round that panics"),
            )
        });
        assert!(current().is_none());
    }
}
