//! `wsstorm serve`: the built-in target on its own, in one process or in several sharing their
//! addresses (`--workers`, SO_REUSEPORT), with a line of counts now and then.

use std::ffi::OsString;
use std::time::Duration;

use tokio::time::Instant;

use super::common::{CmdError, Globals, Outcome, not_loopback};
use super::signals;
use crate::cli::ServeArgs;
use crate::exit::Exit;
use crate::metrics::ServerCounts;
use crate::report::Console;
use crate::run::Controls;
use crate::run::pool::Pool;
use crate::scenario::Behaviour;
use crate::server;
use crate::units::duration;

pub async fn serve(args: ServeArgs, globals: &Globals, console: &Console) -> Outcome {
    if args.batch > 1
        && let (Some(why), Some(p)) = (Behaviour::unbatchable(args.protocol), args.protocol)
    {
        return Err(CmdError::Invalid(format!(
            "--batch {}: {why}: expected no --batch with --protocol {p}",
            args.batch
        )));
    }
    // The processes of --workers (started with --reuse-port) leave this to their parent.
    if !args.reuse_port {
        for warning in args
            .listen
            .iter()
            .filter_map(|a| not_loopback("wsstorm serve", *a))
        {
            console.warn(warning);
        }
    }
    if args.workers > 1 {
        return in_workers(args, globals, console).await;
    }
    let behaviour = behaviour(&args);
    let description = behaviour.describe();
    let server = server::start_on(&args.listen, args.reuse_port, behaviour)
        .await
        .map_err(|e| {
            let listen: Vec<String> = args.listen.iter().map(ToString::to_string).collect();
            CmdError::Failed(format!("cannot listen on {}: {e}", listen.join(", ")))
        })?;
    if args.counts_json {
        let json = |c: ServerCounts| console.machine(&serde_json::to_string(&c).expect("counts serialize"));
        signals::until_ctrl_c(Some(Duration::from_secs(1)), || json(server.counts())).await;
        json(server.shutdown().await);
        return Ok(Exit::Success);
    }
    let urls: Vec<String> = server.addrs.iter().map(|a| format!("ws://{a}/")).collect();
    console.say(format_args!(
        "wsstorm serve: listening on {} ({description}); Ctrl-C to stop",
        urls.join(", ")
    ));
    let mut stats = ServeStats::new(server.started());
    signals::until_ctrl_c(args.stats_every, || console.say(stats.line(server.counts()))).await;
    say_served(console, server.shutdown().await);
    Ok(Exit::Success)
}

fn behaviour(args: &ServeArgs) -> Behaviour {
    Behaviour {
        latency: args.latency,
        jitter: args.jitter,
        no_reply_every: args.no_reply_every,
        no_reply_fraction: args.no_reply_fraction,
        seed: args.seed,
        close_every: args.close_every,
        close_at: args.close_at.clone(),
        close_code: args.close_code,
        close_by_reset: args.close_by_reset,
        refuse_for: args.refuse_for,
        require_token: args.require_token.clone(),
        push_every: args.push_every,
        push_skip: args.push_skip.clone(),
        ping_every: args.ping_every,
        ping_timeout: args.ping_timeout,
        batch: args.batch,
        protocol: args.protocol,
        compression: args.compression,
    }
}

/// The interval lines of `serve --stats-every`.
struct ServeStats {
    started: Instant,
    last: ServerCounts,
}

impl ServeStats {
    fn new(started: Instant) -> Self {
        ServeStats {
            started,
            last: ServerCounts::default(),
        }
    }

    fn line(&mut self, now: ServerCounts) -> String {
        let last = std::mem::replace(&mut self.last, now);
        format!(
            "{:>9.3}s  open {:>7}  accepted {:>6}  received {:>8}  answered {:>8}  refused {:>5}",
            self.started.elapsed().as_secs_f64(),
            now.open,
            now.connections - last.connections,
            now.received - last.received,
            now.answered - last.answered,
            now.refused - last.refused,
        )
    }
}

fn say_served(console: &Console, counts: ServerCounts) {
    let deflated = match counts.deflated {
        0 => String::new(),
        n => format!(" ({n} with permessage-deflate)"),
    };
    console.say(format_args!(
        "served {} connections{deflated}, {} messages received, {} answered, {} withheld",
        counts.connections, counts.received, counts.answered, counts.withheld
    ));
    console.say(format_args!(
        "closed {} on schedule, {} idle; refused {} upgrades (503), {} unauthorized (401); \
         {} pushes, {} pings sent, {} pongs received",
        counts.closed_by_schedule,
        counts.idle_closed,
        counts.refused,
        counts.unauthorized,
        counts.pushes,
        counts.pings_sent,
        counts.pongs_received
    ));
}

/// `serve --workers N`: N processes of `serve` sharing the addresses (SO_REUSEPORT), their
/// counts added up.
async fn in_workers(args: ServeArgs, globals: &Globals, console: &Console) -> Outcome {
    if let Some(any) = args.listen.iter().find(|a| a.port() == 0) {
        return Err(CmdError::Invalid(format!(
            "--workers needs fixed ports to share between its processes, not {any}"
        )));
    }
    let n = args.workers as usize;
    let argv = worker_args(&args, globals);
    let pool = Pool::spawn(std::iter::repeat_n(argv, n))
        .map_err(|e| CmdError::Failed(format!("cannot start the server processes: {e}")))?;
    let urls: Vec<String> = args.listen.iter().map(|a| format!("ws://{a}/")).collect();
    console.say(format_args!(
        "wsstorm serve: listening on {} in {n} processes (SO_REUSEPORT); Ctrl-C to stop",
        urls.join(", ")
    ));
    // Ctrl-C or SIGTERM reaches every server process (a supervisor's SIGTERM must not leave
    // them holding the ports).
    let controls = Controls::default();
    signals::on_interrupts(controls.clone(), |_| {});
    let mut latest = vec![ServerCounts::default(); n];
    let mut stats = ServeStats::new(Instant::now());
    let mut due = args.stats_every.map(|every| (every, Instant::now() + every));
    let statuses = pool
        .wait(&controls, true, |i, line| {
            let Some(line) = line else {
                return;
            };
            match serde_json::from_str::<ServerCounts>(line) {
                Ok(c) => {
                    latest[i] = c;
                    if let Some((every, at)) = &mut due
                        && Instant::now() >= *at
                    {
                        *at += *every;
                        console.say(stats.line(latest.iter().fold(ServerCounts::default(), |a, b| a + *b)));
                    }
                }
                Err(_) => console.say(format_args!("server {i}: {line}")),
            }
        })
        .await;
    say_served(
        console,
        latest.iter().fold(ServerCounts::default(), |a, b| a + *b),
    );
    let failed = statuses
        .iter()
        .filter(|s| !s.is_some_and(|s| s.success()))
        .count();
    if failed > 0 {
        return Err(CmdError::Failed(format!(
            "{failed} of the {n} server processes failed (see above)"
        )));
    }
    Ok(Exit::Success)
}

/// The command line of one server process: the parsed options again (every one named, so
/// that none is lost), sharing the addresses and reporting its counts as JSON lines.
fn worker_args(args: &ServeArgs, globals: &Globals) -> Vec<OsString> {
    let ServeArgs {
        listen,
        workers: _,
        reuse_port: _,
        counts_json: _,
        latency,
        jitter,
        no_reply_every,
        no_reply_fraction,
        stats_every: _,
        seed,
        close_every,
        close_at,
        close_code,
        close_by_reset,
        refuse_for,
        require_token,
        push_every,
        push_skip,
        ping_every,
        ping_timeout,
        batch,
        protocol,
        compression,
    } = args;
    let show = |d: &Duration| OsString::from(duration::show(*d));
    let list = |items: Vec<String>| OsString::from(items.join(","));
    let mut a = globals.args();
    a.push("serve".into());
    for l in listen {
        a.extend(["--listen".into(), l.to_string().into()]);
    }
    a.extend(["--latency".into(), show(latency), "--jitter".into(), show(jitter)]);
    if let Some(n) = no_reply_every {
        a.extend(["--no-reply-every".into(), n.to_string().into()]);
    }
    a.extend(["--no-reply-fraction".into(), no_reply_fraction.to_string().into()]);
    a.extend(["--seed".into(), seed.to_string().into()]);
    if let Some(d) = close_every {
        a.extend(["--close-every".into(), show(d)]);
    }
    if !close_at.is_empty() {
        a.extend([
            "--close-at".into(),
            list(close_at.iter().map(|d| duration::show(*d)).collect()),
        ]);
    }
    if *close_by_reset {
        a.push("--close-by-reset".into());
    } else {
        a.extend(["--close-code".into(), close_code.to_string().into()]);
    }
    a.extend(["--refuse-for".into(), show(refuse_for)]);
    a.extend(["--batch".into(), batch.to_string().into()]);
    if let Some(p) = protocol {
        a.extend(["--protocol".into(), p.name().into()]);
    }
    if let Some(c) = compression {
        a.extend(["--compression".into(), c.name().into()]);
    }
    if let Some(t) = require_token {
        a.extend(["--require-token".into(), t.into()]);
    }
    if let Some(d) = push_every {
        a.extend(["--push-every".into(), show(d)]);
        if !push_skip.is_empty() {
            a.extend([
                "--push-skip".into(),
                list(push_skip.iter().map(u64::to_string).collect()),
            ]);
        }
    }
    if let Some(d) = ping_every {
        a.extend([
            "--ping-every".into(),
            show(d),
            "--ping-timeout".into(),
            show(ping_timeout),
        ]);
    }
    a.extend(["--reuse-port".into(), "--counts-json".into()]);
    a
}
