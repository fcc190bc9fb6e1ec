//! Input errors that point at the scenario file: file, line, column, what was found and
//! what was expected. Every check on user input ends here, so every message has one shape.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem in a scenario file, located by line and column (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The offending source line, shown under the message with a caret.
    pub excerpt: Option<String>,
}

impl ScenarioError {
    /// Locates `span` (byte offsets into `source`) and builds the error.
    pub fn at(file: &Path, source: &str, span: Range<usize>, message: impl Into<String>) -> Self {
        let start = span.start.min(source.len());
        let before = &source[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = source[line_start..start].chars().count() + 1;
        let line_end = source[line_start..]
            .find('\n')
            .map_or(source.len(), |i| line_start + i);
        let text = source[line_start..line_end].trim_end_matches('\r');
        Self {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            excerpt: Some(text.to_string()),
        }
    }

    /// An error about the file as a whole (it cannot be read, or a required table is missing).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            message: message.into(),
            excerpt: None,
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(text) = &self.excerpt {
            let gutter = self.line.to_string().len();
            write!(
                f,
                "\n{:gutter$} |\n{} | {}\n{:gutter$} | {:>col$}",
                "",
                self.line,
                text,
                "",
                "^",
                col = self.column
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// All the errors found in one file, reported together so a user fixes them in one pass.
#[derive(Debug, Clone)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column() {
        let src = "name = \"x\"\nduration = \"5 parsecs\"\n";
        let start = src.find("\"5").unwrap();
        let e = ScenarioError::at(Path::new("a.toml"), src, start..start + 3, "bad");
        assert_eq!((e.line, e.column), (2, 12));
        assert!(e.to_string().starts_with("a.toml:2:12: bad"));
    }
}
