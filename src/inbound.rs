//! The bounce listener: an SMTP server (RFC 5321) that takes mail only for the VERP
//! return paths of `sender.bounce_domain` whose MAC checks. Anything else gets 550 at
//! RCPT TO; it relays nothing. Commands are parsed with smtp-proto; limits apply to
//! message size (SIZE, RFC 1870), time per command and concurrent connections.
//! A message is acknowledged (250) only after intake has flushed it to the store.
//!
//! A listener open to the Internet meets clients that hold slots without sending mail
//! (64 of them sending `NOOP` a byte every 5 s once kept everyone else out). So besides
//! the per-command timeout (`inbound.timeout`) a session has a whole-life limit
//! (`inbound.session_timeout`) and a budget of commands that carry no mail, and one
//! client address (an IPv6 /64) holds at most `inbound.max_connections_per_address`
//! of the `inbound.max_connections` slots; past either cap a client gets 421 at once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_proto::Request;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::domain::MessageId;
use crate::domain::bounce::BounceSource;
use crate::services::Services;
use crate::shutdown::Shutdown;

/// The longest command line accepted (RFC 5321 §4.5.3.1.4 says 512; extensions add).
const MAX_LINE: usize = 4096;
/// Recipients per transaction.
const MAX_RCPT: usize = 50;
/// Commands that carry no mail (NOOP, RSET, HELO/EHLO, unknown or bad ones) per
/// session, as Postfix's `smtpd_junk_command_limit`.
const MAX_JUNK: usize = 100;

/// Sessions per client address. An IPv6 client is counted by its /64, the block one
/// host usually holds.
#[derive(Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One session's claim on its address's share; given back when dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    fn key(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut seg = v6.segments();
                    seg[4..].fill(0);
                    IpAddr::from(seg)
                }
            },
        }
    }

    fn try_take(table: &Arc<PerAddress>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let key = PerAddress::key(ip);
        let mut open = table.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: table.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Accepts connections until shutdown.
pub async fn run(listener: TcpListener, services: Services, mut shutdown: Shutdown) {
    let limit = Arc::new(Semaphore::new(services.config.inbound.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let per_address_max = services.config.inbound.max_connections_per_address;
    loop {
        let Some((stream, peer)) = shutdown.accept(&listener, "bounce listener").await else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let services = services.clone();
        let claim = PerAddress::try_take(&per_address, peer.ip(), per_address_max)
            .ok_or("421 4.7.0 Too many connections from your address, try again later\r\n")
            .and_then(|slot| {
                let permit = limit.clone().try_acquire_owned();
                permit
                    .map(|p| (slot, p))
                    .map_err(|_| "421 4.3.2 Too many connections, try again later\r\n")
            });
        match claim {
            Ok(held) => {
                tokio::spawn(async move {
                    if let Err(e) = session(stream, &services).await {
                        tracing::debug!(%peer, error = %e, "bounce listener session ended");
                    }
                    drop(held);
                });
            }
            Err(refusal) => {
                tokio::spawn(async move {
                    let mut s = stream;
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        s.write_all(refusal.as_bytes()),
                    )
                    .await;
                });
            }
        }
    }
}

async fn reply(w: &mut (impl AsyncWriteExt + Unpin), text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes()).await?;
    w.write_all(b"\r\n").await?;
    w.flush().await
}

/// The time limits of one session.
#[derive(Clone, Copy)]
struct Clock {
    /// Per command line (and per line of DATA).
    per_line: Duration,
    /// When the whole session ends.
    end: tokio::time::Instant,
}

/// Why a session was cut off; its 421 says which.
#[derive(Debug, thiserror::Error)]
enum Cut {
    #[error("no command within inbound.timeout")]
    Command,
    #[error("the session reached inbound.session_timeout")]
    Session,
}

/// Reads one line (with its CRLF) within the per-line limit and the session's end;
/// `None` at end of stream. A limit reached is `ErrorKind::TimedOut` holding a [`Cut`].
async fn read_line(
    r: &mut (impl AsyncBufReadExt + Unpin),
    clock: Clock,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let line_end = tokio::time::Instant::now() + clock.per_line;
    let (until, cut) = if line_end < clock.end {
        (line_end, Cut::Command)
    } else {
        (clock.end, Cut::Session)
    };
    let n = tokio::time::timeout_at(until, r.take(max as u64).read_until(b'\n', &mut line))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, cut))??;
    if n == 0 { Ok(None) } else { Ok(Some(line)) }
}

/// Runs a session; when a time limit cuts it, the client hears 421 with the reason
/// (RFC 5321 §4.5.3.2: a server that closes says so).
async fn session(stream: TcpStream, services: &Services) -> std::io::Result<()> {
    let host = services.config.sender.hostname.clone();
    let inbound = &services.config.inbound;
    let clock = Clock {
        per_line: inbound.timeout,
        end: tokio::time::Instant::now() + inbound.session_timeout,
    };
    let (read, mut w) = stream.into_split();
    let mut r = BufReader::new(read);
    let result = dialogue(&mut r, &mut w, services, clock).await;
    if let Err(e) = &result
        && let Some(cut) = e.get_ref().and_then(|inner| inner.downcast_ref::<Cut>())
    {
        let text = match cut {
            Cut::Session => format!("421 4.4.2 {host} session time limit reached, closing"),
            Cut::Command => format!("421 4.4.2 {host} timeout waiting for a command, closing"),
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), reply(&mut w, &text)).await;
    }
    result
}

async fn dialogue(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    services: &Services,
    clock: Clock,
) -> std::io::Result<()> {
    let host = services.config.sender.hostname.clone();
    let bounce_domain = services.config.sender.bounce_domain.clone();
    let max_size = services.config.inbound.max_message_size as usize;
    let mut junk = 0usize;
    reply(w, &format!("220 {host} ESMTP mailgate bounce listener")).await?;
    let mut have_mail = false;
    let mut rcpts: Vec<MessageId> = Vec::new();
    loop {
        let Some(line) = read_line(r, clock, MAX_LINE).await? else {
            return Ok(());
        };
        let parsed = Request::parse(&mut line.iter());
        if !matches!(
            parsed,
            Ok(Request::Mail { .. } | Request::Rcpt { .. } | Request::Data | Request::Quit)
        ) {
            junk += 1;
            if junk > MAX_JUNK {
                reply(w, "421 4.7.0 Too many commands without mail, closing").await?;
                return Ok(());
            }
        }
        if !line.ends_with(b"\n") {
            reply(w, "500 5.5.2 Line too long").await?;
            return Ok(());
        }
        match parsed {
            Ok(Request::Ehlo { .. }) => {
                have_mail = false;
                rcpts.clear();
                reply(w, &format!("250-{host}\r\n250-SIZE {max_size}\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 PIPELINING")).await?
            }
            Ok(Request::Helo { .. }) => reply(w, &format!("250 {host}")).await?,
            Ok(Request::Mail { from }) => {
                if from.size > max_size {
                    reply(
                        w,
                        &format!("552 5.3.4 Message size exceeds the limit of {max_size} bytes"),
                    )
                    .await?;
                } else {
                    have_mail = true;
                    rcpts.clear();
                    reply(w, "250 2.1.0 Ok").await?
                }
            }
            Ok(Request::Rcpt { to }) => {
                if !have_mail {
                    reply(w, "503 5.5.1 MAIL first").await?;
                } else if rcpts.len() >= MAX_RCPT {
                    reply(w, "452 4.5.3 Too many recipients").await?;
                } else if let Some(id) = services.verp.verify(&to.address, &bounce_domain) {
                    rcpts.push(id);
                    reply(w, "250 2.1.5 Ok").await?
                } else if to
                    .address
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&bounce_domain))
                {
                    reply(
                        w,
                        &format!("550 5.1.1 <{}>: no such bounce address here", to.address),
                    )
                    .await?
                } else {
                    reply(
                        w,
                        &format!(
                            "550 5.7.1 <{}>: relaying denied; this host takes bounces only",
                            to.address
                        ),
                    )
                    .await?
                }
            }
            Ok(Request::Data) => {
                if rcpts.is_empty() {
                    reply(w, "554 5.5.1 No valid recipients").await?;
                    continue;
                }
                reply(w, "354 End data with <CR><LF>.<CR><LF>").await?;
                match read_data(r, clock, max_size).await? {
                    None => {
                        reply(
                            w,
                            &format!("552 5.3.4 Message exceeds the limit of {max_size} bytes"),
                        )
                        .await?;
                    }
                    Some(raw) => {
                        match crate::intake::take(
                            &services.intake,
                            &raw,
                            BounceSource::Listener,
                            &rcpts,
                        )
                        .await
                        {
                            Ok(_) => reply(w, "250 2.0.0 Ok: bounce recorded").await?,
                            Err(e) => {
                                tracing::error!(error = %e, "bounce listener: cannot record a bounce");
                                reply(w, "451 4.3.0 Cannot store the message now, try again later")
                                    .await?
                            }
                        }
                    }
                }
                have_mail = false;
                rcpts.clear();
            }
            Ok(Request::Rset) => {
                have_mail = false;
                rcpts.clear();
                reply(w, "250 2.0.0 Ok").await?
            }
            Ok(Request::Noop { .. }) => reply(w, "250 2.0.0 Ok").await?,
            Ok(Request::Quit) => {
                reply(w, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            Ok(Request::StartTls) => reply(w, "454 4.7.0 TLS not available").await?,
            Ok(_) => reply(w, "502 5.5.1 Command not implemented").await?,
            Err(_) => reply(w, "500 5.5.2 Syntax error").await?,
        }
    }
}

/// Reads DATA up to the lone ".", undoing dot-stuffing (RFC 5321 §4.5.2). `None` when
/// the message is larger than `max` (the rest is read and dropped).
async fn read_data(
    r: &mut (impl AsyncBufReadExt + Unpin),
    clock: Clock,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut too_big = false;
    loop {
        let Some(line) = read_line(r, clock, 64 * 1024).await? else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed in DATA",
            ));
        };
        if line == b".\r\n" || line == b".\n" {
            return Ok(if too_big { None } else { Some(out) });
        }
        let content = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        if out.len() + content.len() > max {
            too_big = true;
            out.clear();
        } else if !too_big {
            out.extend_from_slice(content);
        }
    }
}
