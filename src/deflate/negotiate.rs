//! The permessage-deflate handshake (RFC 7692 §5, §7.1): the client's offer, its check of the
//! server's answer (an extension not offered, a parameter twice, a bad value: the connection
//! fails), and the server's answer to an offer.

use std::fmt::Write as _;

const NAME: &str = "permessage-deflate";

/// A window of 2^15 bytes: the most, and what a side may use when nothing limits it.
pub const MAX_WINDOW_BITS: u8 = 15;
pub const MIN_WINDOW_BITS: u8 = 8;

/// What a client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    /// `client_max_window_bits=N`: the client compresses with at most 2^N bytes of window
    /// (None: the parameter without a value, so that the server may choose).
    pub client_max_window_bits: Option<u8>,
    /// Offer `client_no_context_takeover` and `server_no_context_takeover`.
    pub no_context_takeover: bool,
}

/// What the two sides agreed on for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// The window each side compresses with (at most).
    pub server_max_window_bits: u8,
    pub client_max_window_bits: u8,
}

/// One extension of a `Sec-WebSocket-Extensions` value: its name and parameters.
type Extension<'a> = (&'a str, Vec<(&'a str, Option<&'a str>)>);

/// The parameters of one permessage-deflate offer or answer, each at most once.
#[derive(Default)]
struct Given {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: named without a value (only in an offer).
    client_max_window_bits: Option<Option<u8>>,
}

impl Offer {
    /// The `Sec-WebSocket-Extensions` value of the upgrade request.
    pub fn header(&self) -> String {
        let mut h = format!("{NAME}; client_max_window_bits");
        if let Some(bits) = self.client_max_window_bits {
            let _ = write!(h, "={bits}");
        }
        if self.no_context_takeover {
            h.push_str("; client_no_context_takeover; server_no_context_takeover");
        }
        h
    }
}

/// What the server's answer (its `Sec-WebSocket-Extensions` values joined by commas) agreed to
/// for `offer` (None: nothing was offered): None when it took no extension, or why it fails
/// the connection.
pub fn accept(offer: Option<&Offer>, answer: &str) -> Result<Option<Params>, String> {
    let extensions = parse(answer)?;
    let (name, params) = match extensions.as_slice() {
        [] => return Ok(None),
        [(name, params)] => (*name, params),
        many => {
            return Err(format!(
                "the server answered with {} extensions ({answer:?}); one was offered",
                many.len()
            ));
        }
    };
    let Some(offer) = offer.filter(|_| name.eq_ignore_ascii_case(NAME)) else {
        return Err(format!(
            "the server answered with the extension {name:?}, which was not offered"
        ));
    };
    let given = Given::read(params, false).map_err(|why| format!("{name}: {why} in {answer:?}"))?;
    if offer.no_context_takeover && !given.server_no_context_takeover {
        return Err(format!(
            "{name}: the answer {answer:?} leaves out server_no_context_takeover, which the offer asked for"
        ));
    }
    let client_bits = given.client_max_window_bits.flatten();
    if let (Some(answered), Some(offered)) = (client_bits, offer.client_max_window_bits)
        && answered > offered
    {
        return Err(format!(
            "{name}: client_max_window_bits={answered} in the answer, above the {offered} offered"
        ));
    }
    Ok(Some(Params {
        server_no_context_takeover: given.server_no_context_takeover,
        client_no_context_takeover: given.client_no_context_takeover || offer.no_context_takeover,
        server_max_window_bits: given.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
        client_max_window_bits: client_bits
            .or(offer.client_max_window_bits)
            .unwrap_or(MAX_WINDOW_BITS),
    }))
}

/// The server's side: the first permessage-deflate offer in a request's
/// `Sec-WebSocket-Extensions` values that it can take, and the header value that accepts it.
/// It grants what is asked (no context takeover either way, a smaller server window) and does
/// not limit the client's window.
pub fn answer(offers: &str) -> Option<(Params, String)> {
    let offers = parse(offers).ok()?;
    let given = offers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(NAME))
        .find_map(|(_, params)| Given::read(params, true).ok())?;
    let mut header = NAME.to_string();
    if given.server_no_context_takeover {
        header.push_str("; server_no_context_takeover");
    }
    if given.client_no_context_takeover {
        header.push_str("; client_no_context_takeover");
    }
    if let Some(bits) = given.server_max_window_bits {
        let _ = write!(header, "; server_max_window_bits={bits}");
    }
    let params = Params {
        server_no_context_takeover: given.server_no_context_takeover,
        client_no_context_takeover: given.client_no_context_takeover,
        server_max_window_bits: given.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
        client_max_window_bits: MAX_WINDOW_BITS,
    };
    Some((params, header))
}

impl Given {
    /// Reads the parameters of an offer (`offer`: client_max_window_bits may have no value)
    /// or of an answer.
    fn read(params: &[(&str, Option<&str>)], offer: bool) -> Result<Given, String> {
        let mut given = Given::default();
        for &(key, value) in params {
            let bits = || match value.map(str::parse::<u8>) {
                Some(Ok(n)) if (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&n) => Ok(Some(n)),
                None if offer && key.eq_ignore_ascii_case("client_max_window_bits") => Ok(None),
                _ => Err(format!("{key}={value:?}: expected 8 to 15")),
            };
            let flag = |set: bool| match (set, value) {
                (true, _) => Err(format!("{key} twice")),
                (false, Some(v)) => Err(format!("{key} takes no value, has {v:?}")),
                (false, None) => Ok(true),
            };
            match key.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => {
                    given.server_no_context_takeover = flag(given.server_no_context_takeover)?;
                }
                "client_no_context_takeover" => {
                    given.client_no_context_takeover = flag(given.client_no_context_takeover)?;
                }
                "server_max_window_bits" if given.server_max_window_bits.is_none() => {
                    given.server_max_window_bits = Some(bits()?.expect("a value"));
                }
                "client_max_window_bits" if given.client_max_window_bits.is_none() => {
                    given.client_max_window_bits = Some(bits()?);
                }
                "server_max_window_bits" | "client_max_window_bits" => return Err(format!("{key} twice")),
                _ => return Err(format!("unknown parameter {key:?}")),
            }
        }
        Ok(given)
    }
}

/// The extensions of a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1): `name; key=value`,
/// comma separated; a value may be quoted.
fn parse(header: &str) -> Result<Vec<Extension<'_>>, String> {
    let mut extensions = Vec::new();
    for element in header.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let mut parts = element.split(';').map(str::trim);
        let name = parts.next().unwrap_or_default();
        if !is_token(name) {
            return Err(format!("{name:?} is not an extension name"));
        }
        let mut params = Vec::new();
        for part in parts {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
                None => (part, None),
            };
            if !is_token(key) || value.is_some_and(|v| !is_token(v)) {
                return Err(format!("{part:?} is not an extension parameter"));
            }
            params.push((key, value));
        }
        extensions.push((name, params));
    }
    Ok(extensions)
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Offer = Offer {
        client_max_window_bits: None,
        no_context_takeover: false,
    };
    const TIGHT: Offer = Offer {
        client_max_window_bits: Some(10),
        no_context_takeover: true,
    };

    #[test]
    fn offers_say_what_the_scenario_asks() {
        assert_eq!(PLAIN.header(), "permessage-deflate; client_max_window_bits");
        assert_eq!(
            TIGHT.header(),
            "permessage-deflate; client_max_window_bits=10; client_no_context_takeover; server_no_context_takeover"
        );
    }

    #[test]
    fn answers_give_the_agreed_parameters() {
        let full = Params {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        };
        assert_eq!(accept(Some(&PLAIN), ""), Ok(None));
        assert_eq!(accept(Some(&PLAIN), "permessage-deflate"), Ok(Some(full)));
        assert_eq!(
            accept(
                Some(&PLAIN),
                "Permessage-Deflate; server_max_window_bits=\"12\"; client_max_window_bits=9; client_no_context_takeover"
            ),
            Ok(Some(Params {
                server_max_window_bits: 12,
                client_max_window_bits: 9,
                client_no_context_takeover: true,
                ..full
            }))
        );
        assert_eq!(
            accept(Some(&TIGHT), "permessage-deflate; server_no_context_takeover"),
            Ok(Some(Params {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                client_max_window_bits: 10,
                ..full
            }))
        );
    }

    #[test]
    fn a_wrong_answer_fails_the_connection() {
        for (offer, answer, why) in [
            (None, "permessage-deflate", "not offered"),
            (Some(&PLAIN), "x-webkit-deflate-frame", "not offered"),
            (
                Some(&PLAIN),
                "permessage-deflate, permessage-deflate",
                "2 extensions",
            ),
            (
                Some(&PLAIN),
                "permessage-deflate; server_max_window_bits=16",
                "expected 8 to 15",
            ),
            (
                Some(&PLAIN),
                "permessage-deflate; server_max_window_bits",
                "expected 8 to 15",
            ),
            (
                Some(&PLAIN),
                "permessage-deflate; client_max_window_bits",
                "expected 8 to 15",
            ),
            (
                Some(&PLAIN),
                "permessage-deflate; client_no_context_takeover=1",
                "takes no value",
            ),
            (
                Some(&PLAIN),
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                "twice",
            ),
            (
                Some(&PLAIN),
                "permessage-deflate; server_max_window_bits=10; server_max_window_bits=11",
                "twice",
            ),
            (Some(&PLAIN), "permessage-deflate; mystery", "unknown parameter"),
            (
                Some(&PLAIN),
                "permessage-deflate; a b",
                "not an extension parameter",
            ),
            (
                Some(&TIGHT),
                "permessage-deflate",
                "leaves out server_no_context_takeover",
            ),
            (
                Some(&TIGHT),
                "permessage-deflate; server_no_context_takeover; client_max_window_bits=12",
                "above the 10",
            ),
        ] {
            let e = accept(offer, answer).unwrap_err();
            assert!(e.contains(why), "{answer}: {e}");
        }
    }

    #[test]
    fn the_server_takes_the_first_offer_it_can() {
        assert_eq!(answer("x-other, foo"), None);
        let (params, header) = answer(&TIGHT.header()).unwrap();
        assert_eq!(
            header,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(accept(Some(&TIGHT), &header).map(|p| p.is_some()), Ok(true));
        assert!(params.server_no_context_takeover && params.client_no_context_takeover);
        let (params, header) = answer(
            "permessage-deflate; server_max_window_bits=99, permessage-deflate; server_max_window_bits=10",
        )
        .unwrap();
        assert_eq!(header, "permessage-deflate; server_max_window_bits=10");
        assert_eq!(params.server_max_window_bits, 10);
    }
}
