//! `[connect] source_addrs`: the local addresses clients connect from, so that the ~28 000
//! ephemeral ports of one source/destination pair are not the ceiling. Each entry is one
//! address ("127.0.0.2"), an IPv4 range ("127.0.0.2-127.0.0.9") or an IPv4 CIDR block
//! ("127.0.0.0/28": its host addresses).

use std::net::{IpAddr, Ipv4Addr};

/// The most source addresses a scenario may list (each one a few bytes; 65 536 × 28 000 ports
/// is far beyond any machine's descriptors).
pub const MAX: usize = 65_536;

pub const EXPECTED: &str = "expected an IP address (\"127.0.0.2\"), an IPv4 range \
     (\"127.0.0.2-127.0.0.9\") or an IPv4 CIDR block (\"127.0.0.0/28\")";

/// The addresses one entry names, in order.
pub fn expand(entry: &str) -> Result<Vec<IpAddr>, String> {
    let entry = entry.trim();
    let bad = |why: &str| format!("{entry:?}: {why}; {EXPECTED}");
    if let Some((first, last)) = entry.split_once('-') {
        let (first, last) = (v4(first.trim()), v4(last.trim()));
        let (Some(first), Some(last)) = (first, last) else {
            return Err(bad("a range is of two IPv4 addresses"));
        };
        let (a, b) = (u32::from(first), u32::from(last));
        if a > b {
            return Err(bad("the range ends before it begins"));
        }
        return span(a, b).ok_or_else(|| bad("more addresses than allowed"));
    }
    if let Some((net, bits)) = entry.split_once('/') {
        let (Some(net), Ok(bits)) = (v4(net.trim()), bits.trim().parse::<u32>()) else {
            return Err(bad("a CIDR block is an IPv4 address and a prefix length"));
        };
        if bits > 32 {
            return Err(bad("the prefix length is at most 32"));
        }
        let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
        let base = u32::from(net) & mask;
        let top = base | !mask;
        // Leave out the network and broadcast addresses where a block has them.
        let (a, b) = if bits <= 30 {
            (base + 1, top - 1)
        } else {
            (base, top)
        };
        return span(a, b).ok_or_else(|| bad("more addresses than allowed"));
    }
    entry
        .parse::<IpAddr>()
        .map(|ip| vec![ip])
        .map_err(|_| bad("not an address"))
}

fn v4(text: &str) -> Option<Ipv4Addr> {
    text.parse().ok()
}

fn span(a: u32, b: u32) -> Option<Vec<IpAddr>> {
    (((b - a) as usize) < MAX).then(|| (a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(entry: &str) -> Vec<String> {
        expand(entry).unwrap().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn single_addresses_ranges_and_blocks() {
        assert_eq!(ips("127.0.0.2"), ["127.0.0.2"]);
        assert_eq!(ips("::1"), ["::1"]);
        assert_eq!(
            ips("127.0.0.2-127.0.0.4"),
            ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        );
        assert_eq!(ips("127.0.0.0/30"), ["127.0.0.1", "127.0.0.2"]);
        assert_eq!(ips("127.0.0.9/32"), ["127.0.0.9"]);
        assert_eq!(ips("127.0.0.8/31"), ["127.0.0.8", "127.0.0.9"]);
        assert_eq!(expand("127.1.0.0/16").unwrap().len(), 65_534);
        assert_eq!(ips("127.0.0.255-127.0.1.0"), ["127.0.0.255", "127.0.1.0"]);
    }

    #[test]
    fn mistakes_are_named() {
        for (entry, why) in [
            ("127.0.0.9-127.0.0.2", "ends before it begins"),
            ("127.0.0.1-::1", "two IPv4 addresses"),
            ("127.0.0.0/33", "at most 32"),
            ("127.0.0.0/x", "prefix length"),
            ("localhost", "not an address"),
            ("10.0.0.0/8", "more addresses than allowed"),
        ] {
            let e = expand(entry).unwrap_err();
            assert!(e.contains(why) && e.contains(EXPECTED), "{entry}: {e}");
        }
    }
}
