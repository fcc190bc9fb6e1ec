//! What every command shares: the one error type, the global flags, and the loopback warning.

use std::net::SocketAddr;

use crate::exit::Exit;
use crate::report::Console;
use crate::run::RunError;
use crate::scenario::ScenarioErrors;

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// A scenario with mistakes: each names its file, line and column. Nothing was sent.
    #[error("{0}\nnothing was sent")]
    Scenario(#[from] ScenarioErrors),
    /// Other bad input: a flag, a directory that is not a run's. Nothing was sent.
    #[error("{0}")]
    Invalid(String),
    /// The command could not do its job: a server that cannot listen, a file not written.
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Run(RunError),
}

impl From<RunError> for CmdError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Invalid(errors) => CmdError::Scenario(errors),
            other => CmdError::Run(other),
        }
    }
}

impl CmdError {
    pub fn exit(&self) -> Exit {
        match self {
            CmdError::Scenario(_) | CmdError::Invalid(_) => Exit::InvalidInput,
            CmdError::Failed(_) => Exit::RunFailed,
            CmdError::Run(e) => e.exit(),
        }
    }

    /// The one place errors are printed.
    pub(super) fn print(&self, console: &Console) {
        match self {
            // Each scenario error carries its own `error:` and its excerpt.
            CmdError::Scenario(_) => console.note(self),
            other => console.error(other),
        }
    }
}

/// What a command gives back: its exit code, or why it failed.
pub type Outcome = Result<Exit, CmdError>;

/// The flags every command takes, which worker processes are started with again.
pub struct Globals {
    pub verbose: u8,
    pub log_format: crate::cli::LogFormat,
}

impl Globals {
    /// These flags as arguments.
    pub(super) fn args(&self) -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = Vec::new();
        if self.verbose > 0 {
            a.push(format!("-{}", "v".repeat(usize::from(self.verbose))).into());
        }
        if self.log_format == crate::cli::LogFormat::Json {
            a.extend(["--log-format".into(), "json".into()]);
        }
        a
    }
}

/// The warning for a listener other machines can reach: the built-in target and the proxy
/// listen on loopback unless told otherwise, and say so when they are not.
pub(super) fn not_loopback(what: &str, addr: SocketAddr) -> Option<String> {
    let ip = addr.ip();
    let reach = if ip.is_unspecified() {
        "every interface of this machine"
    } else {
        "an address other machines may reach"
    };
    (!ip.is_loopback()).then(|| {
        format!("{what} listens on {addr}, {reach}, not loopback: anyone who can reach it can connect")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_off_loopback_is_said_to_be_so() {
        for quiet in ["127.0.0.1:9001", "127.0.0.2:80", "[::1]:9001"] {
            assert_eq!(
                not_loopback("wsstorm serve", quiet.parse().unwrap()),
                None,
                "{quiet}"
            );
        }
        let all = not_loopback("wsstorm serve", "0.0.0.0:9001".parse().unwrap()).unwrap();
        assert!(
            all.contains("0.0.0.0:9001, every interface") && all.contains("not loopback"),
            "{all}"
        );
        let lan = not_loopback("wsstorm proxy", "192.168.1.5:9002".parse().unwrap()).unwrap();
        assert!(
            lan.starts_with("wsstorm proxy listens on 192.168.1.5:9002"),
            "{lan}"
        );
        let any6 = not_loopback("wsstorm serve", "[::]:9001".parse().unwrap()).unwrap();
        assert!(any6.contains("every interface"), "{any6}");
    }
}
