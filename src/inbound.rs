//! The bounce listener: an SMTP server (RFC 5321) that takes mail only for the VERP
//! return paths of `sender.bounce_domain` whose MAC checks. Anything else gets 550 at
//! RCPT TO; it relays nothing. Commands are parsed with smtp-proto; limits apply to
//! message size (SIZE, RFC 1870), time per command and concurrent connections.
//! A message is acknowledged (250) only after intake has flushed it to the store.

use std::sync::Arc;
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

/// Accepts connections until shutdown.
pub async fn run(listener: TcpListener, services: Services, mut shutdown: Shutdown) {
    let limit = Arc::new(Semaphore::new(services.config.inbound.max_connections));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "bounce listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let services = services.clone();
        match limit.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(async move {
                    let timeout = services.config.inbound.timeout;
                    if let Err(e) = session(stream, &services, timeout).await {
                        tracing::debug!(%peer, error = %e, "bounce listener session ended");
                    }
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let mut s = stream;
                    let _ = s
                        .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
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

/// Reads one line (with its CRLF) within the time limit; `None` at end of stream.
async fn read_line(
    r: &mut (impl AsyncBufReadExt + Unpin),
    timeout: Duration,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let n = tokio::time::timeout(timeout, r.take(max as u64).read_until(b'\n', &mut line))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "command timed out"))??;
    if n == 0 { Ok(None) } else { Ok(Some(line)) }
}

async fn session(stream: TcpStream, services: &Services, timeout: Duration) -> std::io::Result<()> {
    let host = services.config.sender.hostname.clone();
    let bounce_domain = services.config.sender.bounce_domain.clone();
    let max_size = services.config.inbound.max_message_size as usize;
    let (read, mut w) = stream.into_split();
    let mut r = BufReader::new(read);
    reply(
        &mut w,
        &format!("220 {host} ESMTP mailgate bounce listener"),
    )
    .await?;
    let mut have_mail = false;
    let mut rcpts: Vec<MessageId> = Vec::new();
    loop {
        let Some(line) = read_line(&mut r, timeout, MAX_LINE).await? else {
            return Ok(());
        };
        if !line.ends_with(b"\n") {
            reply(&mut w, "500 5.5.2 Line too long").await?;
            return Ok(());
        }
        match Request::parse(&mut line.iter()) {
            Ok(Request::Ehlo { .. }) => {
                have_mail = false;
                rcpts.clear();
                reply(&mut w, &format!("250-{host}\r\n250-SIZE {max_size}\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 PIPELINING")).await?
            }
            Ok(Request::Helo { .. }) => reply(&mut w, &format!("250 {host}")).await?,
            Ok(Request::Mail { from }) => {
                if from.size > max_size {
                    reply(
                        &mut w,
                        &format!("552 5.3.4 Message size exceeds the limit of {max_size} bytes"),
                    )
                    .await?;
                } else {
                    have_mail = true;
                    rcpts.clear();
                    reply(&mut w, "250 2.1.0 Ok").await?
                }
            }
            Ok(Request::Rcpt { to }) => {
                if !have_mail {
                    reply(&mut w, "503 5.5.1 MAIL first").await?;
                } else if rcpts.len() >= MAX_RCPT {
                    reply(&mut w, "452 4.5.3 Too many recipients").await?;
                } else if let Some(id) = services.verp.verify(&to.address, &bounce_domain) {
                    rcpts.push(id);
                    reply(&mut w, "250 2.1.5 Ok").await?
                } else if to
                    .address
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&bounce_domain))
                {
                    reply(
                        &mut w,
                        &format!("550 5.1.1 <{}>: no such bounce address here", to.address),
                    )
                    .await?
                } else {
                    reply(
                        &mut w,
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
                    reply(&mut w, "554 5.5.1 No valid recipients").await?;
                    continue;
                }
                reply(&mut w, "354 End data with <CR><LF>.<CR><LF>").await?;
                match read_data(&mut r, timeout, max_size).await? {
                    None => {
                        reply(
                            &mut w,
                            &format!("552 5.3.4 Message exceeds the limit of {max_size} bytes"),
                        )
                        .await?;
                    }
                    Some(raw) => {
                        match crate::intake::take(services, &raw, BounceSource::Listener, &rcpts)
                            .await
                        {
                            Ok(_) => reply(&mut w, "250 2.0.0 Ok: bounce recorded").await?,
                            Err(e) => {
                                tracing::error!(error = %e, "bounce listener: cannot record a bounce");
                                reply(
                                    &mut w,
                                    "451 4.3.0 Cannot store the message now, try again later",
                                )
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
                reply(&mut w, "250 2.0.0 Ok").await?
            }
            Ok(Request::Noop { .. }) => reply(&mut w, "250 2.0.0 Ok").await?,
            Ok(Request::Quit) => {
                reply(&mut w, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            Ok(Request::StartTls) => reply(&mut w, "454 4.7.0 TLS not available").await?,
            Ok(_) => reply(&mut w, "502 5.5.1 Command not implemented").await?,
            Err(_) => reply(&mut w, "500 5.5.2 Syntax error").await?,
        }
    }
}

/// Reads DATA up to the lone ".", undoing dot-stuffing (RFC 5321 §4.5.2). `None` when
/// the message is larger than `max` (the rest is read and dropped).
async fn read_data(
    r: &mut (impl AsyncBufReadExt + Unpin),
    timeout: Duration,
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut too_big = false;
    loop {
        let Some(line) = read_line(r, timeout, 64 * 1024).await? else {
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
