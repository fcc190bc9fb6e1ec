//! STOMP 1.2 frames, as they travel in WebSocket messages: a command line, header lines, a
//! blank line, the body, and a NUL; EOLs may follow (servers send them after frames, and alone
//! as heart-beats). A `content-length` header sets the body's length (the body may then hold
//! NULs); without one, the body ends at the first NUL.
//!
//! Read by the preset (JSON pointers read a frame's body), the built-in target, and the fuzz
//! target `stomp`. Reading never panics, and never copies: a frame borrows the message.

use std::borrow::Cow;
use std::fmt;

/// A frame: its command, raw header lines and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    pub command: &'a str,
    /// The header block: lines of `name:value` (escaped, as sent).
    headers: &'a str,
    pub body: &'a str,
}

/// What a message holds: a frame, or only EOLs (a heart-beat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read<'a> {
    Frame(Frame<'a>),
    HeartBeat,
}

/// Why a message is no STOMP frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// No blank line ends the headers.
    NoHeaderEnd,
    /// The command is not a word of capitals.
    BadCommand,
    /// A header line without a colon.
    BadHeader,
    /// The frame does not end in NUL.
    NoNul,
    /// `content-length` is no number, or longer than what came.
    BadContentLength,
    /// Something other than EOLs after the frame's NUL.
    TrailingBytes,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::NoHeaderEnd => "no blank line after the headers",
            Malformed::BadCommand => "the command is no word of capitals",
            Malformed::BadHeader => "a header line without a colon",
            Malformed::NoNul => "the frame does not end in NUL",
            Malformed::BadContentLength => "content-length is no number, or longer than the body",
            Malformed::TrailingBytes => "more than EOLs after the frame's NUL",
        })
    }
}

impl std::error::Error for Malformed {}

fn is_eol(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// Reads one message.
pub fn read(text: &str) -> Result<Read<'_>, Malformed> {
    let text = text.trim_start_matches(is_eol);
    if text.is_empty() {
        return Ok(Read::HeartBeat);
    }
    let line_end = text.find('\n').ok_or(Malformed::NoHeaderEnd)?;
    let command = text[..line_end].strip_suffix('\r').unwrap_or(&text[..line_end]);
    if command.is_empty() || !command.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Malformed::BadCommand);
    }
    let rest = &text[line_end + 1..];
    // The header block ends at the first empty line.
    let (headers, after) = if let Some(after) = rest.strip_prefix('\n') {
        ("", after)
    } else if let Some(after) = rest.strip_prefix("\r\n") {
        ("", after)
    } else {
        let end = [rest.find("\n\n"), rest.find("\n\r\n")]
            .into_iter()
            .flatten()
            .min()
            .ok_or(Malformed::NoHeaderEnd)?;
        let skip = if rest[end + 1..].starts_with('\n') { 2 } else { 3 };
        (&rest[..end + 1], &rest[end + skip..])
    };
    let mut frame = Frame {
        command,
        headers,
        body: "",
    };
    if frame.header_lines().any(|l| !l.contains(':')) {
        return Err(Malformed::BadHeader);
    }
    let (body, tail) = match frame.header("content-length") {
        Some(n) => {
            let n: usize = n.trim().parse().map_err(|_| Malformed::BadContentLength)?;
            let body = after.get(..n).ok_or(Malformed::BadContentLength)?;
            let tail = &after[n..];
            (body, tail.strip_prefix('\0').ok_or(Malformed::NoNul)?)
        }
        None => {
            let nul = after.find('\0').ok_or(Malformed::NoNul)?;
            (&after[..nul], &after[nul + 1..])
        }
    };
    if !tail.chars().all(is_eol) {
        return Err(Malformed::TrailingBytes);
    }
    frame.body = body;
    Ok(Read::Frame(frame))
}

impl<'a> Frame<'a> {
    fn header_lines(&self) -> impl Iterator<Item = &'a str> {
        self.headers
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|l| !l.is_empty())
    }

    /// A header's value, unescaped; the first one wins when it repeats (STOMP 1.2).
    pub fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        self.header_lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            (unescape(n) == name).then(|| unescape(v))
        })
    }
}

/// A header name or value as sent: `\n`, `\r`, `\c` (colon) and `\\` escaped.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['\n', '\r', ':', '\\']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 4);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ':' => out.push_str("\\c"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The inverse of [`escape`]; an unknown escape is kept as it came.
pub fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame<'_> {
        match read(text) {
            Ok(Read::Frame(f)) => f,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn frames_as_servers_send_them() {
        let f = frame("CONNECTED\nversion:1.2\nheart-beat:1000,0\n\n\0\n");
        assert_eq!(f.command, "CONNECTED");
        assert_eq!(f.header("heart-beat").as_deref(), Some("1000,0"));
        assert_eq!(f.header("server"), None);
        assert_eq!(f.body, "");
        let f = frame("MESSAGE\r\nsubscription:a\r\ncontent-length:7\r\n\r\n{\"a\":1}\0");
        assert_eq!(f.header("subscription").as_deref(), Some("a"));
        assert_eq!(f.body, "{\"a\":1}");
        // content-length: the body may hold NULs.
        assert_eq!(frame("SEND\ncontent-length:3\n\na\0b\0\n\n").body, "a\0b");
        assert_eq!(
            frame("\n\nRECEIPT\nreceipt-id:7\n\n\0")
                .header("receipt-id")
                .as_deref(),
            Some("7")
        );
        assert_eq!(frame("DISCONNECT\n\n\0").command, "DISCONNECT");
        // The first of a repeated header wins; escapes are undone.
        let f = frame("MESSAGE\nfoo:a\\cb\\\\\nfoo:z\n\nx\0");
        assert_eq!(f.header("foo").as_deref(), Some("a:b\\"));
        assert_eq!(read("\n"), Ok(Read::HeartBeat));
        assert_eq!(read("\r\n\r\n"), Ok(Read::HeartBeat));
    }

    #[test]
    fn malformed_frames_say_why() {
        for (text, why) in [
            ("SEND\ndestination:/a\n\nbody", Malformed::NoNul),
            ("SEND\ndestination:/a\n", Malformed::NoHeaderEnd),
            ("SEND", Malformed::NoHeaderEnd),
            ("send\n\n\0", Malformed::BadCommand),
            ("42[\"a\"]\n\n\0", Malformed::BadCommand),
            ("{\"jsonrpc\":\"2.0\"}", Malformed::NoHeaderEnd),
            ("SEND\nnocolon\n\n\0", Malformed::BadHeader),
            ("SEND\ncontent-length:x\n\n\0", Malformed::BadContentLength),
            ("SEND\ncontent-length:9\n\nab\0", Malformed::BadContentLength),
            ("SEND\ncontent-length:1\n\nab\0", Malformed::NoNul),
            ("SEND\n\nab\0cd", Malformed::TrailingBytes),
        ] {
            assert_eq!(read(text), Err(why), "{text:?}");
        }
    }

    #[test]
    fn escapes_round_trip() {
        for text in ["plain", "a:b", "line\nbreak\r", "back\\slash", "\\c"] {
            assert_eq!(unescape(&escape(text)), text);
        }
        assert_eq!(escape("/queue/a:b"), "/queue/a\\cb");
        assert!(matches!(escape("/queue/a"), Cow::Borrowed(_)));
    }
}
