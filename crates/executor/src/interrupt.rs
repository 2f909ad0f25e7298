//! Cancellation, injected: the executor never listens for signals itself.

use tokio_util::sync::CancellationToken;

/// Two escalating levels of "stop".
///
/// * [`Interrupt::stop`] (first Ctrl-C, SIGTERM): start nothing new, follow the jobs in flight
///   to their end, journal them.
/// * [`Interrupt::terminate`] (second Ctrl-C): additionally ask JOB to terminate every job in
///   flight (`operate_job_instance` code 1) and follow them to their end, briefly.
///
/// The CLI wires these to signals; tests call them directly.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    soft: CancellationToken,
    hard: CancellationToken,
}

impl Interrupt {
    /// A fresh, untriggered interrupt.
    pub fn new() -> Self {
        Self::default()
    }

    /// First level: stop starting pushes.
    pub fn stop(&self) {
        self.soft.cancel();
    }

    /// Second level: terminate the jobs in flight (implies [`Interrupt::stop`]).
    pub fn terminate(&self) {
        self.soft.cancel();
        self.hard.cancel();
    }

    /// Escalates one level: the first call stops, the second terminates. Returns the level
    /// reached (1 or 2).
    pub fn escalate(&self) -> u8 {
        if self.soft.is_cancelled() {
            self.terminate();
            2
        } else {
            self.stop();
            1
        }
    }

    /// True once [`Interrupt::stop`] (or more) was requested.
    pub fn is_stopping(&self) -> bool {
        self.soft.is_cancelled()
    }

    /// True once [`Interrupt::terminate`] was requested.
    pub fn is_terminating(&self) -> bool {
        self.hard.is_cancelled()
    }

    pub(crate) fn soft(&self) -> &CancellationToken {
        &self.soft
    }

    pub(crate) fn hard(&self) -> &CancellationToken {
        &self.hard
    }
}
