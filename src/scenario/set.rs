//! `--set PATH=VALUE`: changes one value of the scenario before it is checked, in the file's
//! own text (toml_edit keeps everything else as written, so errors still point at the lines
//! of the file). PATH is dotted, with numbers for entries of arrays: `phases.0.clients`,
//! `connect.timeout`, `pacing.rate`, `target`. VALUE is read as TOML (a number, a boolean, an
//! array, an inline table, a quoted string) and otherwise taken as a string.

use toml_edit::{DocumentMut, Item, Table, Value};

/// One `--set`: where, and the value's text.
#[derive(Debug, Clone, PartialEq)]
pub struct Set {
    pub path: Vec<String>,
    pub value: String,
}

impl Set {
    /// `PATH=VALUE`.
    pub fn parse(text: &str) -> Result<Set, String> {
        // What an error may show of the flag: never a value given for a secret.
        let shown = match text.split_once('=') {
            Some((path, _)) if is_secret(path.trim()) => {
                format!("{:?}", format!("{}=[redacted]", path.trim()))
            }
            _ if is_secret(text.trim()) => "a value for [secrets]".to_string(),
            _ => format!("{text:?}"),
        };
        let (path, value) = text
            .split_once('=')
            .ok_or_else(|| format!("{shown}: expected PATH=VALUE such as phases.0.clients=5000"))?;
        let path: Vec<String> = path.trim().split('.').map(|k| k.trim().to_string()).collect();
        if path.iter().any(String::is_empty) {
            return Err(format!(
                "{shown}: expected a dotted path such as phases.0.clients"
            ));
        }
        Ok(Set {
            path,
            value: value.trim().to_string(),
        })
    }

    /// The flag as errors show it: a value given for a secret is never shown.
    fn shown(&self) -> String {
        let path = self.path.join(".");
        if is_secret(&path) {
            format!("--set {path}=[redacted]")
        } else {
            format!("--set {path}={}", self.value)
        }
    }
}

/// Whether a path (or the text of a flag) is in the `[secrets]` table.
fn is_secret(path: &str) -> bool {
    path.split('.').next().is_some_and(|k| k.trim() == "secrets")
}

/// The scenario text with every `sets` applied, in order.
pub fn apply(source: &str, sets: &[Set]) -> Result<String, String> {
    let mut doc: DocumentMut = source
        .parse()
        .map_err(|e| format!("the scenario is not valid TOML, so --set cannot change it: {e}"))?;
    for set in sets {
        // [secrets] hold strings: a number there stays a string (and no error shows it).
        let value: Value = if set.path.first().is_some_and(|k| k == "secrets") {
            Value::from(set.value.as_str())
        } else {
            set.value
                .parse()
                .unwrap_or_else(|_| Value::from(set.value.as_str()))
        };
        in_table(doc.as_table_mut(), &set.path, value).map_err(|why| format!("{}: {why}", set.shown()))?;
    }
    Ok(doc.to_string())
}

fn index(key: &str, len: usize) -> Result<usize, String> {
    match key.parse::<usize>() {
        Ok(i) if i < len => Ok(i),
        Ok(i) => Err(format!("there is no entry {i} (there are {len})")),
        Err(_) => Err(format!("{key:?} is not an index: expected a number for an array")),
    }
}

fn in_table(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let (key, rest) = path.split_first().expect("a path has a key");
    if rest.is_empty() {
        let mut value = value;
        if let Some(old) = table.get(key).and_then(Item::as_value) {
            *value.decor_mut() = old.decor().clone();
        }
        table.insert(key, Item::Value(value));
        return Ok(());
    }
    match table.get_mut(key) {
        Some(Item::Table(t)) => in_table(t, rest, value),
        Some(Item::ArrayOfTables(tables)) => {
            let i = index(&rest[0], tables.len())?;
            if rest.len() == 1 {
                return Err(format!("{key}.{i} is a whole table: expected a key inside it"));
            }
            in_table(tables.get_mut(i).expect("index checked"), &rest[1..], value)
        }
        Some(Item::Value(v)) => in_value(v, rest, value),
        Some(_) => Err(format!("{key:?} cannot hold {:?}", rest[0])),
        None if rest[0].parse::<usize>().is_err() => {
            table.insert(key, Item::Table(Table::new()));
            let Some(Item::Table(t)) = table.get_mut(key) else {
                unreachable!("just inserted")
            };
            in_table(t, rest, value)
        }
        None => Err(format!("there is no {key:?} array")),
    }
}

/// Inside an inline table or an array written as a value.
fn in_value(here: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let (key, rest) = path.split_first().expect("a path has a key");
    match here {
        Value::InlineTable(t) if rest.is_empty() => {
            t.insert(key, value);
            Ok(())
        }
        Value::InlineTable(t) => match t.get_mut(key) {
            Some(v) => in_value(v, rest, value),
            None => Err(format!("there is no {key:?}")),
        },
        Value::Array(a) => {
            let i = index(key, a.len())?;
            if rest.is_empty() {
                a.replace(i, value);
                Ok(())
            } else {
                in_value(a.get_mut(i).expect("index checked"), rest, value)
            }
        }
        _ => Err(format!("cannot go into a plain value to set {key:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(source: &str, sets: &[&str]) -> Result<String, String> {
        let sets: Vec<Set> = sets.iter().map(|s| Set::parse(s).unwrap()).collect();
        apply(source, &sets)
    }

    const SRC: &str = "name = \"x\"  # the name\n[connect]\nheartbeat = { every = \"5s\", timeout = \"3s\" }\n\
                       [[phases]]\nclients = 10\n[[phases]]\nclients = 20\nhold = \"5s\"\n";

    #[test]
    fn values_change_in_place_and_keep_the_rest() {
        let out = set(
            SRC,
            &[
                "phases.1.clients=5000",
                "name=y",
                "connect.heartbeat.every=10s",
                "connect.timeout = \"2s\"",
                "pacing.rate=5/s",
                "target=ws://127.0.0.1:9/",
            ],
        )
        .unwrap();
        assert!(out.contains("name = \"y\"  # the name"), "{out}");
        assert!(
            out.contains("clients = 10\n") && out.contains("clients = 5000\n"),
            "{out}"
        );
        assert!(out.contains("every = \"10s\""), "{out}");
        assert!(out.contains("timeout = \"2s\""), "{out}");
        assert!(out.contains("[pacing]\nrate = \"5/s\""), "{out}");
    }

    #[test]
    fn impossible_paths_are_named() {
        for (s, why) in [
            ("phases.5.clients=1", "there is no entry 5 (there are 2)"),
            ("phases.x.clients=1", "is not an index"),
            ("phases.0=1", "whole table"),
            ("name.first=1", "plain value"),
            ("steps.0.send=x", "no \"steps\" array"),
        ] {
            let e = set(SRC, &[s]).unwrap_err();
            assert!(e.contains(why) && e.contains("--set"), "{s}: {e}");
        }
        assert!(Set::parse("phases.0.clients").is_err());
        // A secret stays a string, whatever it looks like.
        let out = set(SRC, &["secrets.pin=123456"]).unwrap();
        assert!(out.contains("pin = \"123456\""), "{out}");
        assert!(Set::parse("a..b=1").is_err());
    }

    /// Field finding 14 (issue 19): `--set secrets.k.x=VALUE` echoed the value in its error.
    #[test]
    fn field_14_a_value_for_a_secret_is_never_shown() {
        let src = "[secrets]\nk = \"old\"\n";
        let e = set(src, &["secrets.k.x=hunter2-value"]).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("--set secrets.k.x=[redacted]"), "{e}");
        for bad in ["secrets..k=hunter2-value", "secrets.k"] {
            let e = Set::parse(bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
