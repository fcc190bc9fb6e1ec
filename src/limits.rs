//! What this machine lets one process hold: open-file descriptors (raised from the soft to the
//! hard limit) and ephemeral ports per source/destination pair. Said before connecting, with
//! what to change when a scenario asks for more.

use std::net::{IpAddr, UdpSocket};

use crate::scenario::{Plan, Target};

/// Descriptors kept for everything that is not a connection (files, the runtime, the proxy's
/// listener, results).
pub const RESERVED_FDS: u64 = 256;

/// Descriptors one client takes in a process: its socket, plus the embedded target's end, plus
/// the chaos proxy's two.
pub fn descriptors_per_client(plan: &Plan) -> u64 {
    1 + u64::from(matches!(plan.target, Target::Embedded(_))) + 2 * u64::from(plan.needs_proxy())
}

/// Raises the open-files soft limit to the hard limit; gives (soft, hard) afterwards.
pub fn raise_open_files() -> (u64, u64) {
    let soft = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    let hard = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(soft, |(_, hard)| hard);
    (soft, hard)
}

/// The clients one process can hold when each takes `per_client` descriptors.
pub fn clients_per_process(open_files: u64, per_client: u64) -> u64 {
    open_files.saturating_sub(RESERVED_FDS) / per_client.max(1)
}

/// The processes needed for `clients` clients of `per_client` descriptors under `open_files`.
pub fn processes_for(clients: u64, per_client: u64, open_files: u64) -> u64 {
    clients
        .div_ceil(clients_per_process(open_files, per_client).max(1))
        .max(1)
}

/// How many ephemeral ports one source address has towards one destination (Linux:
/// net.ipv4.ip_local_port_range; 28 232 by default).
pub fn ephemeral_ports() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u64>().ok());
            Some(it.next()??.abs_diff(it.next()??) + 1)
        })
        .unwrap_or(28_232)
}

/// The first source address that is not an address of this machine.
pub fn foreign_source(sources: &[IpAddr]) -> Option<(IpAddr, std::io::Error)> {
    let mut seen = std::collections::HashSet::new();
    sources
        .iter()
        .filter(|ip| seen.insert(**ip))
        .find_map(|ip| UdpSocket::bind((*ip, 0)).err().map(|e| (*ip, e)))
}

/// The warning for a process about to hold `clients` clients of `per_client` descriptors each,
/// when its open-files limit (raised to the hard limit) is too low; `workers_hint` suggests
/// `--workers`.
pub fn open_files_warning(clients: u64, per_client: u64, workers_hint: bool) -> Option<String> {
    let (soft, hard) = raise_open_files();
    let fit = clients_per_process(soft, per_client);
    if clients <= fit {
        return None;
    }
    let workers = processes_for(clients, per_client, hard);
    let how = if workers_hint {
        format!("run them in {workers} processes with --workers {workers} (or --workers auto), or ")
    } else {
        String::new()
    };
    Some(format!(
        "the open-files limit is {soft} (hard limit {hard}): this process can hold {fit} clients of \
         {per_client} descriptor(s), and {clients} are asked for, so the rest will fail with `io` \
         errors; {how}raise the hard limit (ulimit -Hn as root, LimitNOFILE= in systemd, \
         --ulimit nofile= in docker)"
    ))
}

/// The warning for `clients` connections from this machine to one target address from
/// `sources` source addresses (0: the system's one), when the ephemeral ports are too few.
///
/// Linux gives connect() the even half of the port range first; past it, every connect scans
/// the even ports in use (`__inet_check_established`) before it finds an odd one, and a 2-core
/// machine spends its time there (seen at 14 000 connections per source address).
pub fn ports_warning(clients: u64, sources: usize) -> Option<String> {
    let ports = ephemeral_ports();
    let comfortable = ports / 2 * sources.max(1) as u64;
    if clients <= comfortable {
        return None;
    }
    let wanted = clients.div_ceil((ports / 2).max(1));
    Some(format!(
        "{clients} clients to one target address from {} source address(es): more than the {} \
         ephemeral ports ({} in all) the kernel hands out cheaply per source address; past that \
         each connect scans the ports in use. List at least {wanted} in [connect] source_addrs \
         (e.g. \"127.0.0.2-127.0.0.{}\" on loopback), or widen net.ipv4.ip_local_port_range",
        sources.max(1),
        ports / 2,
        ports,
        wanted + 1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_share_the_clients_under_the_limit() {
        assert_eq!(clients_per_process(20_000, 1), 19_744);
        assert_eq!(clients_per_process(20_000, 2), 9_872);
        assert_eq!(processes_for(250_000, 1, 20_000), 13);
        assert_eq!(processes_for(19_744, 1, 20_000), 1);
        assert_eq!(processes_for(19_745, 1, 20_000), 2);
        assert_eq!(processes_for(0, 1, 20_000), 1);
        assert_eq!(
            processes_for(10, 1, 100),
            10,
            "a tiny limit: one client per process at worst"
        );
    }

    #[test]
    fn ports_are_plenty_below_half_the_range_per_source() {
        let half = ephemeral_ports() / 2;
        assert!(ports_warning(half, 1).is_none());
        let w = ports_warning(half * 3 + 1, 2).unwrap();
        assert!(w.contains("List at least 4 in [connect] source_addrs"), "{w}");
    }

    #[test]
    fn local_and_foreign_sources() {
        assert!(foreign_source(&["127.0.0.1".parse().unwrap(), "127.0.0.7".parse().unwrap()]).is_none());
        let (ip, _) = foreign_source(&["127.0.0.1".parse().unwrap(), "192.0.2.77".parse().unwrap()]).unwrap();
        assert_eq!(ip.to_string(), "192.0.2.77", "TEST-NET-1 is no one's address");
    }
}
