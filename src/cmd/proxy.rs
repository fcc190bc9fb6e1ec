//! `wsstorm proxy`: the fault-injecting TCP proxy on its own, in front of any client and
//! server, with its faults on for its whole life.

use std::net::SocketAddr;

use super::common::{CmdError, Outcome, not_loopback};
use super::signals;
use crate::cli::ProxyArgs;
use crate::exit::Exit;
use crate::proxy::Proxy;
use crate::report::Console;
use crate::scenario::{Fault, Toxic};

pub async fn proxy(args: ProxyArgs, console: &Console) -> Outcome {
    let faults = faults(&args);
    if let Some(warning) = not_loopback("wsstorm proxy", args.listen) {
        console.warn(warning);
    }
    let upstream = upstream(&args.upstream).await?;
    if loops(args.listen, &upstream) {
        return Err(CmdError::Invalid(format!(
            "--upstream {} is the proxy's own address ({}): every connection would come back to it",
            args.upstream, args.listen
        )));
    }
    let proxy = Proxy::start(args.listen, args.upstream.clone(), args.seed)
        .await
        .map_err(|e| CmdError::Failed(format!("cannot listen on {}: {e}", args.listen)))?;
    if loops(proxy.addr(), &upstream) {
        proxy.shutdown().await;
        return Err(CmdError::Invalid(format!(
            "--upstream {} is the proxy's own address ({}): every connection would come back to it",
            args.upstream, args.listen
        )));
    }
    for (id, fault) in faults.iter().enumerate() {
        proxy.begin(id as u64, *fault);
    }
    let described = if faults.is_empty() {
        "no faults".to_string()
    } else {
        faults
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    console.say(format_args!(
        "wsstorm proxy: {} -> {} ({described}); Ctrl-C to stop",
        proxy.addr(),
        args.upstream
    ));
    signals::until_ctrl_c(args.stats_every, || {
        let c = proxy.counts();
        console.say(format_args!(
            "open {:>7}  accepted {:>8}  bytes up {:>12}  down {:>12}  upstream failures {}",
            c.open, c.connections, c.bytes_upstream, c.bytes_downstream, c.upstream_failures
        ));
    })
    .await;
    let c = proxy.shutdown().await;
    console.say(format_args!(
        "proxied {} connections ({} upstream failures, {} closed by limit_data); {} bytes upstream, {} downstream",
        c.connections, c.upstream_failures, c.limited, c.bytes_upstream, c.bytes_downstream
    ));
    Ok(Exit::Success)
}

/// The addresses `--upstream HOST:PORT` names, resolved now: a missing or invalid port, or a
/// host that does not resolve, is bad input before anything listens.
async fn upstream(text: &str) -> Result<Vec<SocketAddr>, CmdError> {
    let expected = "expected HOST:PORT such as 127.0.0.1:9001 or localhost:9001";
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| CmdError::Invalid(format!("--upstream {text:?}: no port: {expected}")))?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
        CmdError::Invalid(format!(
            "--upstream {text:?}: {port:?} is not a port (1-65535): {expected}"
        ))
    })?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| {
            CmdError::Invalid(format!(
                "--upstream {text:?}: {host:?} does not resolve ({e}): {expected}"
            ))
        })?
        .collect();
    if addrs.is_empty() {
        return Err(CmdError::Invalid(format!(
            "--upstream {text:?}: {host:?} has no address"
        )));
    }
    Ok(addrs)
}

/// Whether a connection to one of `upstream` would reach the proxy listening on `listen`.
fn loops(listen: SocketAddr, upstream: &[SocketAddr]) -> bool {
    upstream.iter().any(|u| {
        u.port() == listen.port()
            && (u.ip() == listen.ip()
                || (listen.ip().is_unspecified()
                    && (u.ip().is_loopback()
                        || u.ip().is_unspecified()
                        || std::net::UdpSocket::bind((u.ip(), 0)).is_ok())))
    })
}

/// The faults the flags ask for, each on every connection the toxicity picks.
fn faults(args: &ProxyArgs) -> Vec<Fault> {
    let mut toxics = Vec::new();
    if let Some(add) = args.latency {
        toxics.push(Toxic::Latency {
            add,
            jitter: args.jitter.unwrap_or_default(),
        });
    }
    if let Some(bytes_per_s) = args.bandwidth {
        toxics.push(Toxic::Bandwidth { bytes_per_s });
    }
    if let Some(average) = args.slicer {
        toxics.push(Toxic::Slicer {
            average: average as usize,
            variation: args.slicer_variation as usize,
            delay: args.slicer_delay,
        });
    }
    if let Some(delay) = args.slow_close {
        toxics.push(Toxic::SlowClose { delay });
    }
    if let Some(bytes) = args.limit_data {
        toxics.push(Toxic::LimitData { bytes });
    }
    toxics
        .into_iter()
        .map(|toxic| Fault {
            toxic,
            direction: args.direction,
            toxicity: args.toxicity,
        })
        .collect()
}
