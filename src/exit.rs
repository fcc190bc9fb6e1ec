//! Exit codes, distinct and documented in the README, so CI can tell a failed gate from a
//! broken run.

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The run completed and every threshold passed.
    Success = 0,
    /// The run could not do its job: target unreachable, results not writable.
    RunFailed = 1,
    /// The scenario or the command line is invalid; nothing was sent.
    InvalidInput = 2,
    /// The run completed and at least one threshold was crossed.
    ThresholdsCrossed = 3,
    /// Stopped by Ctrl-C or SIGTERM; reports were still written.
    Interrupted = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}
