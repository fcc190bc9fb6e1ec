//! The one place that prints. Everything a command shows goes through a `Console`: lines and
//! the final summary on stdout (nothing with `--quiet`), warnings and errors on stderr, and the
//! live display. Every line passes the redaction filter, so no secret reaches the terminal
//! whatever the code that wrote it. A stdout or stderr that is closed or full (`| head`,
//! `/dev/full`) is not an error: the run goes on and writes its reports; output is dropped.

use std::fmt::Display;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::redact;

/// How the live display shows a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// A status line on a terminal, a plain line every few seconds otherwise.
    Human,
    /// No progress and no summary on stdout (warnings and errors still go to stderr).
    Quiet,
    /// One JSON line per second on stdout: a worker of `run --workers` talking to its parent.
    Json,
}

/// Where a command's output goes. Cheap to clone: clones share their state.
#[derive(Debug, Clone)]
pub struct Console {
    display: Show,
    /// Set once a write to stdout failed: the reader is gone, later lines are dropped.
    stdout_gone: Arc<AtomicBool>,
    stderr_gone: Arc<AtomicBool>,
}

impl Console {
    pub fn new(display: Show) -> Console {
        Console {
            display,
            stdout_gone: Arc::default(),
            stderr_gone: Arc::default(),
        }
    }

    /// A console that shows nothing on stdout (tests, `--quiet`).
    pub fn quiet() -> Console {
        Console::new(Show::Quiet)
    }

    pub fn show_mode(&self) -> Show {
        self.display
    }

    /// Whether this process reports to a `run --workers` parent.
    pub fn is_worker(&self) -> bool {
        self.display == Show::Json
    }

    /// A line on stdout, unless quiet (or a worker, whose stdout is its parent's).
    pub fn say(&self, line: impl Display) {
        if self.display == Show::Human {
            self.out(&format!("{line}\n"));
        }
    }

    /// Text on stdout as it is (a summary, a plan), unless quiet.
    pub fn show(&self, text: &str) {
        if self.display == Show::Human {
            self.out(text);
        }
    }

    /// Text on stdout whatever the display (what a command was asked to print: a schema, a
    /// completion script).
    pub fn print(&self, text: &str) {
        self.out(text);
    }

    /// `warning: …` on stderr.
    pub fn warn(&self, what: impl Display) {
        self.err(&format!("warning: {what}\n"));
    }

    /// `error: …` on stderr.
    pub fn error(&self, what: impl Display) {
        self.err(&format!("error: {what}\n"));
    }

    /// A line on stderr as it is (scenario errors carry their own `error:` prefixes).
    pub fn note(&self, what: impl Display) {
        self.err(&format!("{what}\n"));
    }

    /// A line for the parent of `run --workers` to read: numbers, and names already masked
    /// where they were made, written as they are (masking the serialised line would corrupt
    /// it: a secret `true` or `0.25` in a flag or a bucket bound).
    pub fn machine(&self, line: &str) {
        write_raw(&mut io::stdout().lock(), &self.stdout_gone, &format!("{line}\n"));
    }

    fn out(&self, text: &str) {
        write_to(&mut io::stdout().lock(), &self.stdout_gone, text);
    }

    fn err(&self, text: &str) {
        write_to(&mut io::stderr().lock(), &self.stderr_gone, text);
    }
}

/// Writes `text`, masked, unless the stream already failed; a failure marks it gone.
fn write_to(stream: &mut impl Write, gone: &AtomicBool, text: &str) {
    if !gone.load(Relaxed) {
        write_raw(stream, gone, &redact::text(text));
    }
}

/// Writes `text` as it is, unless the stream already failed; a failure marks it gone.
fn write_raw(stream: &mut impl Write, gone: &AtomicBool, text: &str) {
    if gone.load(Relaxed) {
        return;
    }
    if stream
        .write_all(text.as_bytes())
        .and_then(|()| stream.flush())
        .is_err()
    {
        gone.store(true, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that fails like a closed pipe.
    struct Closed(usize);

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.0 += 1;
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stream_is_tried_once_and_never_fails_the_caller() {
        let gone = AtomicBool::new(false);
        let mut closed = Closed(0);
        write_to(&mut closed, &gone, "one\n");
        write_to(&mut closed, &gone, "two\n");
        assert!(gone.load(Relaxed));
        assert_eq!(closed.0, 1);
    }
}
