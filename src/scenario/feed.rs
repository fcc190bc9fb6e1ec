//! `[feed]`: a CSV file (with a header row) that gives each client one row, its columns used
//! in templates as `{{feed.COLUMN}}` (headers, messages). The row is chosen by client number,
//! so shards of one scenario (client numbers are the scenario's) never share a `unique` row:
//! - `sequential`: client k gets row k mod rows;
//! - `random`: a row picked by the seed and the client number (the same in every run);
//! - `unique`: client k gets row k, and a scenario with more clients than rows is refused.

use std::path::{Path, PathBuf};

/// Which row each client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Sequential,
    Random,
    Unique,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Sequential => "sequential",
            Mode::Random => "random",
            Mode::Unique => "unique",
        }
    }
}

/// A loaded feed.
#[derive(Debug, Clone)]
pub struct Feed {
    pub file: PathBuf,
    pub mode: Mode,
    pub columns: Vec<String>,
    pub rows: Vec<Box<[Box<str>]>>,
}

/// The largest feed file read (its rows are held in memory).
pub const MAX_FEED: u64 = 256 << 20;

impl Feed {
    /// The longest value in column `column`, in bytes.
    pub fn widest(&self, column: u16) -> usize {
        self.rows
            .iter()
            .filter_map(|row| row.get(usize::from(column)))
            .map(|value| value.len())
            .max()
            .unwrap_or(0)
    }

    /// Reads `file` (a header row, then one row per record, every row as wide as the header).
    pub fn load(file: &Path, mode: Mode) -> Result<Feed, String> {
        let bytes = super::files::read_bounded(file, MAX_FEED)?;
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| format!("{}: {e}", file.display()))?
            .iter()
            .map(|c| c.trim().to_string())
            .collect();
        if columns.iter().any(String::is_empty) {
            return Err(format!(
                "{}:1: an empty column name: expected a header row such as user,token",
                file.display()
            ));
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(String::new(), |p| format!(":{}", p.line()));
                format!("{}{line}: {e}", file.display())
            })?;
            rows.push(record.iter().map(Box::from).collect());
        }
        if rows.is_empty() {
            return Err(format!(
                "{}: no rows under the header: expected one row per client",
                file.display()
            ));
        }
        Ok(Feed {
            file: file.to_path_buf(),
            mode,
            columns,
            rows,
        })
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The row of client `client`.
    pub fn row_of(&self, client: u64, seed: u64) -> &[Box<str>] {
        let n = self.rows.len() as u64;
        let i = match self.mode {
            Mode::Sequential | Mode::Unique => client % n,
            // SplitMix64 of (seed, client): a fixed pick per client.
            Mode::Random => {
                let mut z = seed ^ client.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                (z ^ (z >> 31)) % n
            }
        };
        &self.rows[i as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_by_mode_and_mistakes_located() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users.csv");
        std::fs::write(&file, "user,token\nann,t1\nbob,t2\ncid,t3\n").unwrap();
        let feed = Feed::load(&file, Mode::Sequential).unwrap();
        assert_eq!(feed.column("token"), Some(1));
        assert_eq!(&*feed.row_of(4, 1)[0], "bob");
        let random = Feed::load(&file, Mode::Random).unwrap();
        let picks: Vec<&str> = (0..30).map(|c| &*random.row_of(c, 7)[0]).collect();
        assert!(
            ["ann", "bob", "cid"].iter().all(|u| picks.contains(u)),
            "{picks:?}"
        );
        assert_eq!(random.row_of(5, 7), random.row_of(5, 7));

        std::fs::write(&file, "user,token\nann,t1\nbob\n").unwrap();
        let e = Feed::load(&file, Mode::Unique).unwrap_err();
        assert!(e.contains("users.csv:3"), "{e}");
        std::fs::write(&file, "user,token\n").unwrap();
        assert!(Feed::load(&file, Mode::Unique).unwrap_err().contains("no rows"));
    }
}
