//! A string of the scenario with its place in the file, for errors that point at it.

use toml::Spanned;

pub type Text = Spanned<String>;
