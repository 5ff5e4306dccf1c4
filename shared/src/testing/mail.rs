//! Local DNS and SMTP servers for library tests of the verifier: a DNS server that answers
//! `MX mx.<zone>` for any name under one zone and `A 127.0.0.1` for that MX name, and a
//! scripted SMTP server whose RCPT answers (and their delay) a test chooses. Both on free
//! loopback ports; the black-box suite uses the fuller Python fakes instead.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, MX};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

/// Starts a DNS server for `zone` on a free UDP port; every other name is NXDOMAIN.
pub async fn dns_server(zone: &str) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind the DNS server");
    let addr = socket.local_addr().expect("DNS address");
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while let Ok((n, peer)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
            reply.metadata.recursion_desired = query.metadata.recursion_desired;
            reply.metadata.recursion_available = true;
            for q in &query.queries {
                reply.add_query(q.clone());
                let name = q.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
                let inside = name == zone || name.ends_with(&format!(".{zone}"));
                let mx_name = format!("mx.{zone}");
                match q.query_type() {
                    RecordType::A if name == mx_name => {
                        reply.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A::new(127, 0, 0, 1))));
                    }
                    RecordType::MX if inside && name != mx_name => {
                        let exchange = Name::from_ascii(format!("{mx_name}.")).expect("MX name");
                        reply.add_answer(Record::from_rdata(q.name().clone(), 60, RData::MX(MX::new(10, exchange))));
                    }
                    _ if inside => {}
                    _ => reply.metadata.response_code = ResponseCode::NXDomain,
                }
            }
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    addr
}

/// What the scripted SMTP server saw: RCPT TO addresses, in order.
#[derive(Clone, Default)]
pub struct SmtpLog {
    rcpts: Arc<Mutex<Vec<String>>>,
}

impl SmtpLog {
    pub fn rcpts(&self) -> Vec<String> {
        self.rcpts.lock().unwrap().clone()
    }

    /// How many times each address was asked.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for r in self.rcpts() {
            *counts.entry(r).or_default() += 1;
        }
        counts
    }
}

/// Starts an SMTP server on a free port of 127.0.0.1: it greets, accepts EHLO, MAIL and
/// RSET, and answers each RCPT with `answer(address, times asked before)` after `delay`.
pub async fn smtp_server(
    delay: Duration,
    answer: impl Fn(&str, usize) -> String + Send + Sync + 'static,
) -> (u16, SmtpLog) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the SMTP server");
    let port = listener.local_addr().expect("SMTP address").port();
    let log = SmtpLog::default();
    let answer = Arc::new(answer);
    let shared = log.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (log, answer) = (shared.clone(), answer.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 mx.test ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply = if upper.starts_with("RCPT TO:") {
                        let address = line[8..].trim().trim_matches(['<', '>']).to_ascii_lowercase();
                        let before = {
                            let mut rcpts = log.rcpts.lock().unwrap();
                            let before = rcpts.iter().filter(|r| **r == address).count();
                            rcpts.push(address.clone());
                            before
                        };
                        tokio::time::sleep(delay).await;
                        answer(&address, before)
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        "250 OK".to_owned()
                    };
                    if write.write_all(format!("{reply}\r\n").as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, log)
}

/// A context on a temporary embedded store whose verifier uses these servers: `direct`
/// probes to `smtp_port`, DNS at `dns`, and `extra` settings on top.
pub fn mail_context(
    dns: SocketAddr,
    smtp_port: u16,
    extra: &[(&str, &str)],
) -> (crate::context::AppContext, tempfile::TempDir) {
    let mut env: Vec<(String, String)> = vec![
        ("LEADPUSH_SMTP_PROBE".into(), "direct".into()),
        ("LEADPUSH_DNS_SERVERS".into(), dns.to_string()),
        ("LEADPUSH_SMTP_PORT".into(), smtp_port.to_string()),
        ("LEADPUSH_SMTP_HELO".into(), "verifier.leadpush.test".into()),
        ("LEADPUSH_SMTP_PER_HOST".into(), "8".into()),
        ("LEADPUSH_SMTP_PER_HOST_PER_MINUTE".into(), "0".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    super::embedded_context_with(&env)
}
