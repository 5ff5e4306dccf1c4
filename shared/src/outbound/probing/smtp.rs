//! The SMTP probe: EHLO, MAIL FROM, RCPT TO a random address (catch-all check) and then
//! each address to verify, in one session per domain batch, never sending DATA.
//!
//! Politeness: at most `LEADPUSH_SMTP_PER_HOST` sessions per destination IP at once (per
//! process; MX names that share an address share its bound),
//! one connection for many addresses of a domain (RSET every [`RCPT_PER_TRANSACTION`]),
//! and short timeouts. Replies that are not a clear yes or no (4xx greylisting, 421,
//! timeouts, blocks) are reported as such and end up as `unknown`, never as a guess.
//!
//! Within an invocation deadline (`support::deadline`) no step starts that could outlast it:
//! the addresses not asked then are left for a later invocation (`SessionReport::cut_short`).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::Engine;
use crate::config::ProbeMode;
use crate::support::deadline;

/// Recipients per transaction before an RSET (RFC 5321 requires servers to take 100).
pub const RCPT_PER_TRANSACTION: usize = 50;
/// MX hosts tried, in preference order, before giving up.
const MAX_HOSTS: usize = 2;
const MAX_LINE: usize = 1024;
const MAX_REPLY_LINES: usize = 64;

/// What the server said to one RCPT TO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Rcpt {
    Accepted,
    /// 5xx: the mailbox does not exist (or is disabled, or full).
    Rejected {
        code: u16,
        text: String,
    },
    /// 4xx: greylisting or a temporary failure; ask again later.
    Temporary {
        code: u16,
        text: String,
    },
    /// 5xx that names a block of us (spam lists, policy), not the mailbox.
    Blocked {
        code: u16,
        text: String,
    },
    /// The session ended before this address was asked.
    NotAsked,
}

/// The evidence of one session (also what `leadpush prober` answers, as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionReport {
    /// The MX host that answered.
    pub host: Option<String>,
    /// A server greeted us (Hunter's `smtp_server`).
    pub connected: bool,
    /// The answer to the random address: `Some(true)` is a catch-all server.
    pub catch_all: Option<bool>,
    /// One answer per address, in order.
    pub rcpts: Vec<Rcpt>,
    /// Why the session stopped early, in plain words.
    pub failure: Option<String>,
    /// The server refused us rather than the address.
    pub blocked: bool,
    /// The session stopped before the invocation's deadline: the addresses not asked are
    /// for a later invocation, not a verdict.
    #[serde(default)]
    pub cut_short: bool,
}

/// What a session stopped at the deadline says.
pub const CUT_SHORT: &str = "stopped before the invocation's deadline";

impl SessionReport {
    pub(crate) fn failed(addresses: usize, why: String) -> Self {
        Self { rcpts: vec![Rcpt::NotAsked; addresses], failure: Some(why), ..Self::default() }
    }
}

fn is_block_text(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    ["blocked", "block list", "blocklist", "blacklist", "spamhaus", "spam", "rbl", "denied", "reputation", "policy"]
        .iter()
        .any(|w| lower.contains(w))
}

fn classify(code: u16, text: String) -> Rcpt {
    match code {
        200..=299 => Rcpt::Accepted,
        400..=499 => Rcpt::Temporary { code, text },
        500..=599 if is_block_text(&text) && !text.to_ascii_lowercase().contains("user") => {
            Rcpt::Blocked { code, text }
        }
        _ => Rcpt::Rejected { code, text },
    }
}

/// An address safe to put in an SMTP command (no line breaks, brackets or spaces).
fn safe_in_command(address: &str) -> bool {
    !address.is_empty()
        && address.len() <= 320
        && !address.bytes().any(|b| b <= b' ' || b == b'<' || b == b'>' || b == 0x7f)
}

/// Probes `addresses` (all at one domain) on the first reachable host of `hosts`.
/// `random` is an address that should not exist, asked first to detect catch-all.
pub async fn probe_domain(
    engine: &Engine,
    allow_private: bool,
    hosts: &[String],
    random: Option<&str>,
    addresses: &[String],
) -> SessionReport {
    if let ProbeMode::Prober(endpoint) = &engine.config.probe {
        return super::remote::probe(engine, endpoint, hosts, random, addresses).await;
    }
    let mut last_failure = "no MX host to connect to".to_owned();
    for host in hosts.iter().take(MAX_HOSTS) {
        // Connecting and the greeting may take a timeout each.
        if !deadline::allows(engine.config.smtp_timeout * 2) {
            return SessionReport { cut_short: true, ..SessionReport::failed(addresses.len(), CUT_SHORT.into()) };
        }
        let ips = match engine.resolver() {
            Ok(resolver) => {
                engine.stats.dns_queries.fetch_add(1, Ordering::Relaxed);
                resolver.ips(host).await
            }
            Err(e) => Err(e),
        };
        let ips: Vec<IpAddr> = match ips {
            Ok(ips) => {
                ips.into_iter().filter(|ip| allow_private || !crate::outbound::ssrf::is_forbidden(*ip)).collect()
            }
            Err(e) => {
                last_failure = e;
                continue;
            }
        };
        let Some(ip) = ips.first().copied() else {
            last_failure = format!("{host} has no public address to connect to");
            continue;
        };
        // The per-minute budget first (waiting for it holds no session slot), then a slot.
        if let Err(why) = rate_limited(engine, ip, host).await {
            // Past the deadline: these addresses are for a later invocation, not a verdict.
            return SessionReport {
                cut_short: deadline::current().is_some(),
                ..SessionReport::failed(addresses.len(), why)
            };
        }
        let slots = engine.ip_slots(ip);
        let Ok(_permit) = slots.acquire_owned().await else { continue };
        match connect(engine, SocketAddr::new(ip, engine.config.smtp_port)).await {
            Ok(Stream::Direct(stream)) => return finish(session(engine, stream, random, addresses).await, host),
            Ok(Stream::Socks(stream)) => return finish(session(engine, stream, random, addresses).await, host),
            Err(e) => last_failure = format!("could not connect to {host}: {e}"),
        }
    }
    SessionReport::failed(addresses.len(), last_failure)
}

/// The longest wait for a mail server's per-minute budget without an invocation deadline.
const MAX_RATE_WAIT: Duration = Duration::from_secs(60);

/// Waits for a session start in `ip`'s per-minute budget when that wait (and a session's
/// first steps) fits before the deadline; else says when to retry.
async fn rate_limited(engine: &Engine, ip: IpAddr, host: &str) -> Result<(), String> {
    loop {
        let Err(wait) = engine.rate_check(ip) else { return Ok(()) };
        let fits = match deadline::current() {
            Some(_) => deadline::allows(wait + engine.config.smtp_timeout * 2),
            None => wait <= MAX_RATE_WAIT,
        };
        if !fits {
            return Err(format!(
                "{host} reached its limit of {} sessions a minute; retry in {} s",
                engine.config.smtp_per_host_per_minute,
                wait.as_secs().max(1)
            ));
        }
        tokio::time::sleep(wait).await;
    }
}

fn finish(mut report: SessionReport, host: &str) -> SessionReport {
    report.host = Some(host.to_owned());
    report
}

enum Stream {
    Direct(TcpStream),
    Socks(tokio_socks::tcp::Socks5Stream<TcpStream>),
}

async fn connect(engine: &Engine, target: SocketAddr) -> Result<Stream, String> {
    let timeout = engine.config.smtp_timeout;
    let connecting = async {
        match &engine.config.probe {
            ProbeMode::Off | ProbeMode::Prober(_) => Err("the SMTP probe does not connect from here".to_owned()),
            ProbeMode::Direct => TcpStream::connect(target).await.map(Stream::Direct).map_err(|e| e.to_string()),
            ProbeMode::Socks5(proxy) => tokio_socks::tcp::Socks5Stream::connect(proxy.as_str(), target)
                .await
                .map(Stream::Socks)
                .map_err(|e| format!("SOCKS5 proxy: {e}")),
        }
    };
    let stream = tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| format!("no connection within {} ms", timeout.as_millis()))??;
    engine.stats.smtp_connections.fetch_add(1, Ordering::Relaxed);
    Ok(stream)
}

struct Conversation<S> {
    stream: BufReader<S>,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conversation<S> {
    /// One (possibly multi-line) reply: its code and text.
    async fn reply(&mut self) -> Result<(u16, String), String> {
        let mut text = String::new();
        for _ in 0..MAX_REPLY_LINES {
            let mut line = Vec::new();
            let read = tokio::time::timeout(self.timeout, async {
                let mut limited = (&mut self.stream).take(MAX_LINE as u64);
                tokio::io::AsyncBufReadExt::read_until(&mut limited, b'\n', &mut line).await
            })
            .await
            .map_err(|_| format!("no reply within {} ms", self.timeout.as_millis()))?
            .map_err(|e| format!("connection error: {e}"))?;
            if read == 0 {
                return Err("the server closed the connection".into());
            }
            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
            let code =
                line.get(..3).and_then(|c| c.parse::<u16>().ok()).ok_or_else(|| "unparseable SMTP reply".to_owned())?;
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(line.get(4..).unwrap_or("").trim());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, text));
            }
        }
        Err("SMTP reply too long".into())
    }

    async fn command(&mut self, line: &str) -> Result<(u16, String), String> {
        let bytes = format!("{line}\r\n");
        tokio::time::timeout(self.timeout, self.stream.get_mut().write_all(bytes.as_bytes()))
            .await
            .map_err(|_| format!("could not send within {} ms", self.timeout.as_millis()))?
            .map_err(|e| format!("connection error: {e}"))?;
        self.reply().await
    }
}

async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    engine: &Engine,
    stream: S,
    random: Option<&str>,
    addresses: &[String],
) -> SessionReport {
    let mut c = Conversation { stream: BufReader::new(stream), timeout: engine.config.smtp_timeout };
    let mut report = SessionReport { rcpts: vec![Rcpt::NotAsked; addresses.len()], ..SessionReport::default() };
    match c.reply().await {
        Ok((220, _)) => report.connected = true,
        Ok((code, text)) => {
            report.connected = true;
            report.blocked = code >= 500 && is_block_text(&text);
            report.failure = Some(format!("the server refused the session: {code} {text}"));
            return report;
        }
        Err(e) => {
            report.failure = Some(format!("no SMTP greeting ({e})"));
            return report;
        }
    }
    if let Err(why) = converse(engine, &mut c, &mut report, random, addresses).await {
        report.failure = Some(why);
    }
    // Best effort; the answer does not matter.
    let _ = tokio::time::timeout(Duration::from_millis(500), c.stream.get_mut().write_all(b"QUIT\r\n")).await;
    report
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    engine: &Engine,
    c: &mut Conversation<S>,
    report: &mut SessionReport,
    random: Option<&str>,
    addresses: &[String],
) -> Result<(), String> {
    let helo = &engine.config.helo_name;
    let (code, _) = c.command(&format!("EHLO {helo}")).await?;
    if code != 250 {
        let (code, text) = c.command(&format!("HELO {helo}")).await?;
        if code != 250 {
            // A refusal that names a block list refuses us, not any address.
            report.blocked = code >= 500 && is_block_text(&text);
            return Err(format!("the server refused HELO: {code} {text}"));
        }
    }
    let from = &engine.config.mail_from;
    let mail = async |c: &mut Conversation<S>, report: &mut SessionReport| -> Result<(), String> {
        let (code, text) = c.command(&format!("MAIL FROM:<{from}>")).await?;
        if !(200..300).contains(&code) {
            report.blocked = code >= 500;
            return Err(format!("the server refused MAIL FROM: {code} {text}"));
        }
        Ok(())
    };
    mail(c, report).await?;
    let mut in_transaction = 0usize;
    let stop = |report: &mut SessionReport| {
        report.cut_short = true;
        Err(CUT_SHORT.to_owned())
    };
    if let Some(random) = random.filter(|r| safe_in_command(r)) {
        if !deadline::allows(c.timeout) {
            return stop(report);
        }
        let (code, text) = c.command(&format!("RCPT TO:<{random}>")).await?;
        in_transaction += 1;
        report.catch_all = match classify(code, text) {
            Rcpt::Accepted => Some(true),
            Rcpt::Rejected { .. } => Some(false),
            Rcpt::Blocked { code, text } => {
                report.blocked = true;
                return Err(format!("the server blocked the probe: {code} {text}"));
            }
            Rcpt::Temporary { .. } | Rcpt::NotAsked => None,
        };
    }
    for (i, address) in addresses.iter().enumerate() {
        if !safe_in_command(address) {
            continue;
        }
        if !deadline::allows(c.timeout) {
            return stop(report);
        }
        if in_transaction >= RCPT_PER_TRANSACTION {
            c.command("RSET").await?;
            mail(c, report).await?;
            in_transaction = 0;
        }
        let (code, text) = c.command(&format!("RCPT TO:<{address}>")).await?;
        in_transaction += 1;
        if code == 421 {
            report.rcpts[i] = Rcpt::Temporary { code, text: text.clone() };
            return Err(format!("the server closed the session: {code} {text}"));
        }
        let answer = classify(code, text);
        if matches!(answer, Rcpt::Blocked { .. }) {
            report.blocked = true;
        }
        report.rcpts[i] = answer;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified_without_guessing() {
        assert_eq!(classify(250, "OK".into()), Rcpt::Accepted);
        assert!(matches!(classify(451, "greylisted, try later".into()), Rcpt::Temporary { code: 451, .. }));
        assert!(matches!(classify(550, "5.1.1 user unknown".into()), Rcpt::Rejected { .. }));
        assert!(matches!(classify(554, "5.7.1 blocked using spamhaus".into()), Rcpt::Blocked { .. }));
        assert!(!safe_in_command("a@b.c>\r\nDATA"));
        assert!(safe_in_command("alice@example.com"));
    }

    /// A server that greets, then answers every command with `refusal`.
    async fn refusing_server(refusal: &'static str) -> tokio::io::DuplexStream {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let (ours, theirs) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let (read, mut write) = tokio::io::split(theirs);
            let mut lines = BufReader::new(read).lines();
            let _ = write.write_all(b"220 mx.test ESMTP\r\n").await;
            while let Ok(Some(_)) = lines.next_line().await {
                let _ = write.write_all(format!("{refusal}\r\n").as_bytes()).await;
            }
        });
        ours
    }

    #[cfg(feature = "embedded")]
    #[tokio::test]
    async fn a_helo_refused_by_a_block_list_marks_the_probe_blocked() {
        let (ctx, _dir) = crate::testing::embedded_context();
        let addresses = ["ada@example.com".to_owned()];
        let stream = refusing_server("554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org").await;
        let report = session(ctx.enrich(), stream, None, &addresses).await;
        assert!(report.blocked, "{report:?}");
        assert!(report.failure.is_some_and(|f| f.contains("spamhaus")));
        // A refusal that names no block list is not a block.
        let stream = refusing_server("554 5.5.1 command not recognized").await;
        assert!(!session(ctx.enrich(), stream, None, &addresses).await.blocked);
    }
}
