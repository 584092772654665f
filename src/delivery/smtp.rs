//! One SMTP connection (RFC 5321) to a relay or an MX host, reused for several
//! messages. Built on mail-send's `SmtpClient`, with two things it does not do itself:
//! TCP_NODELAY right after connecting (without it each message waits ~44 ms on Nagle
//! and delayed ACK), and keeping the final reply text of DATA, which often names the
//! remote queue id that support will be asked about.
//!
//! PIPELINING (RFC 2920): MAIL, RCPT and DATA go in one write, and when the caller
//! names the message that follows, its MAIL, RCPT and DATA go in the same write as this
//! message's content (RFC 2920 §3.1 lets message content start a group). A message then
//! costs one round trip, not two. The replies to the commands sent ahead are kept with
//! the connection until that message is sent; a message announced so is always sent
//! next, since a server that said 354 takes whatever follows as its content.
//!
//! DSN (RFC 3461): where the server offers it, MAIL FROM carries `RET=HDRS ENVID=<id>`
//! and RCPT TO `NOTIFY=FAILURE,DELAY ORCPT=rfc822;<rcpt>`, so bounces come back short
//! and carry our id.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mail_send::SmtpClient;
use smtp_proto::{EXT_DSN, EXT_PIPELINING, EXT_START_TLS, Response};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::classify::{Class, classify_error, classify_reply, enhanced_status};
use super::{AttemptReport, Envelope, Outcome};
use crate::domain::Detail;

/// How to treat TLS on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Never start TLS.
    Off,
    /// STARTTLS when offered, clear text otherwise (RFC 3207; MX delivery).
    Opportunistic,
    /// STARTTLS, or do not send.
    Required,
    /// TLS from the first byte (port 465).
    Implicit,
}

/// Settings shared by every connection of a route.
#[derive(Clone)]
pub struct SmtpSettings {
    /// The name given in EHLO.
    pub ehlo_name: String,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub tls: TlsPolicy,
    /// Check the server's certificate (relays); MX delivery accepts any, since
    /// opportunistic TLS still beats clear text.
    pub verify_certificates: bool,
    /// The relay login; the password stays a secret until it is written to the server.
    pub credentials: Option<(String, secrecy::SecretString)>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("ehlo_name", &self.ehlo_name)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

enum Client {
    Plain(SmtpClient<TcpStream>),
    Tls(Box<SmtpClient<TlsStream<TcpStream>>>),
}

/// An open, greeted connection ready for MAIL FROM.
pub struct Connection {
    client: Client,
    host: String,
    ip: String,
    tls: Option<String>,
    /// EHLO capabilities (smtp-proto's EXT_* bits).
    caps: u32,
    /// Messages sent over this connection.
    pub sent: usize,
    /// The message announced with the last one's content, and the replies to its MAIL,
    /// RCPT and DATA.
    announced: Option<(Envelope, Vec<Response<String>>)>,
}

impl Connection {
    /// Connects to `host:port` (trying each of its addresses), reads the greeting, says
    /// EHLO, starts TLS as the policy says and authenticates. On failure, the outcome
    /// to record for the message that needed the connection.
    pub async fn open(
        host: &str,
        port: u16,
        settings: &SmtpSettings,
    ) -> Result<Connection, Outcome> {
        match tokio::net::lookup_host((host, port)).await {
            Ok(a) => Connection::open_at(host, a.collect(), settings).await,
            Err(e) => Err(Outcome::Deferred(AttemptReport {
                remote_host: Some(host.to_string()),
                reply: Some(
                    Detail::CannotResolve {
                        host: host.to_string(),
                        error: e.to_string(),
                    }
                    .to_string(),
                ),
                ..AttemptReport::default()
            })),
        }
    }

    /// Like [`Connection::open`], with the host's addresses already resolved (MX delivery
    /// resolves them through the configured name servers); `host` names the server in
    /// reports and TLS. The steps: connect, implicit TLS when asked, greeting and EHLO,
    /// STARTTLS as the policy says, authentication.
    pub async fn open_at(
        host: &str,
        addrs: Vec<SocketAddr>,
        settings: &SmtpSettings,
    ) -> Result<Connection, Outcome> {
        let mut opening = Opening {
            host,
            settings,
            started: Instant::now(),
            report: AttemptReport {
                remote_host: Some(host.to_string()),
                ..AttemptReport::default()
            },
        };
        let (stream, addr) = connect_first(host, &addrs, settings.connect_timeout)
            .await
            .map_err(|text| opening.fail(Class::Temporary, text))?;
        opening.report.remote_ip = Some(addr.ip().to_string());
        let plain = SmtpClient {
            stream,
            timeout: settings.command_timeout,
        };
        let mut client = if settings.tls == TlsPolicy::Implicit {
            Client::Tls(Box::new(opening.tls(plain, false).await?))
        } else {
            Client::Plain(plain)
        };
        greet(&mut client)
            .await
            .map_err(|failure| opening.refused(failure))?;
        let mut caps = ehlo(&mut client, &settings.ehlo_name)
            .await
            .map_err(|failure| opening.refused(failure))?;
        if let Client::Plain(plain) = client {
            client = match (settings.tls, caps & EXT_START_TLS != 0) {
                (TlsPolicy::Opportunistic | TlsPolicy::Required, true) => {
                    let mut tls = Client::Tls(Box::new(opening.tls(plain, true).await?));
                    caps = ehlo(&mut tls, &settings.ehlo_name)
                        .await
                        .map_err(|failure| opening.refused(failure))?;
                    tls
                }
                (TlsPolicy::Required, false) => {
                    return Err(opening.fail(
                        Class::Temporary,
                        Detail::NoStartTls {
                            host: host.to_string(),
                        }
                        .to_string(),
                    ));
                }
                _ => Client::Plain(plain),
            };
        }
        let tls = match &client {
            Client::Tls(c) => c
                .stream
                .get_ref()
                .1
                .protocol_version()
                .map(tls_version_name),
            Client::Plain(_) => None,
        };
        if let Some((user, pass)) = &settings.credentials {
            authenticate(&mut client, caps, user, pass)
                .await
                .map_err(|e| {
                    opening.fail(classify_error(&e), format!("authentication at {host}: {e}"))
                })?;
        }
        Ok(Connection {
            client,
            host: host.to_string(),
            ip: addr.ip().to_string(),
            tls,
            caps,
            sent: 0,
            announced: None,
        })
    }

    /// Whether the server has hung up, or said something unasked (a 421 before it
    /// closes, a TLS close), since the last exchange. Such a connection must not carry
    /// another message: its commands would meet a closed socket, and the message would
    /// be deferred although the server would take it on a new connection. A read that
    /// finds nothing waiting says the connection is fine; whatever it finds, the
    /// connection is dropped anyway, so consuming it does no harm.
    pub fn closed_by_peer(&self) -> bool {
        let tcp = match &self.client {
            Client::Plain(c) => &c.stream,
            Client::Tls(c) => c.stream.get_ref().0,
        };
        let mut byte = [0u8; 1];
        !matches!(tcp.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Whether the server takes pipelined commands, so that `send` can announce the
    /// message that follows.
    pub fn pipelines(&self) -> bool {
        self.caps & EXT_PIPELINING != 0
    }

    /// Sends one message; with `next`, announces that message along with this one's
    /// content (only where the server pipelines). `envelope` must be the message
    /// announced last, if one was. Returns the outcome and whether the connection can be
    /// reused; when it can, `next` (if given) must be the next message sent on it.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        raw: &[u8],
        next: Option<&Envelope>,
    ) -> (Outcome, bool) {
        let started = Instant::now();
        let mut report = AttemptReport {
            remote_host: Some(self.host.clone()),
            remote_ip: Some(self.ip.clone()),
            tls: self.tls.clone(),
            ..AttemptReport::default()
        };
        let opening = match self.announced.take() {
            None => None,
            Some((announced, replies)) if announced == *envelope => Some(replies),
            Some((announced, _)) => {
                report.reply = Some(format!(
                    "mailgate announced the message {} on this connection, then sent another",
                    announced.envid
                ));
                return (Outcome::Deferred(report), false);
            }
        };
        let next = next.filter(|_| self.pipelines());
        let exchange = match &mut self.client {
            Client::Plain(c) => transact(c, envelope, raw, self.caps, opening, next).await,
            Client::Tls(c) => transact(c.as_mut(), envelope, raw, self.caps, opening, next).await,
        };
        report.duration_ms = started.elapsed().as_millis() as u64;
        let next_intact = match (next, exchange.next_opening) {
            (Some(n), NextOpening::Read(replies)) => {
                self.announced = Some((n.clone(), replies));
                true
            }
            (_, NextOpening::NotSent) => true,
            (_, NextOpening::Lost) | (None, NextOpening::Read(_)) => false,
        };
        match exchange.result {
            Ok(reply) => {
                self.sent += 1;
                apply_reply(&mut report, Some(&reply));
                (Outcome::Delivered(report), next_intact)
            }
            Err(Refusal::Reply(reply)) => {
                apply_reply(&mut report, Some(&reply));
                // The server answered: the session is intact (RFC 5321 §4.1.1.5) unless
                // it said 421 (closing). Refused before the content, it is reset first.
                let alive = reply.code != 421
                    && next_intact
                    && (!exchange.before_content || self.rset().await);
                (
                    Outcome::from_class(classify_reply(reply.code), report),
                    alive,
                )
            }
            Err(Refusal::Error(e)) => {
                report.reply = Some(e.to_string());
                (Outcome::from_class(classify_error(&e), report), false)
            }
        }
    }

    async fn rset(&mut self) -> bool {
        match &mut self.client {
            Client::Plain(c) => c.rset().await.is_ok(),
            Client::Tls(c) => c.rset().await.is_ok(),
        }
    }

    /// Says QUIT and closes. A connection with a message announced is only dropped: its
    /// server waits for content and would take a QUIT as part of it; a dropped
    /// connection makes it discard the open transaction.
    pub async fn close(self) {
        if self.announced.is_some() {
            return;
        }
        let _ = match self.client {
            Client::Plain(c) => c.quit().await,
            Client::Tls(c) => c.quit().await,
        };
    }
}

type ConnFailure = (Class, Option<Response<String>>, String);

/// A connection being opened: what the report of its failure says so far.
struct Opening<'a> {
    host: &'a str,
    settings: &'a SmtpSettings,
    started: Instant,
    report: AttemptReport,
}

impl Opening<'_> {
    /// The outcome for a failure to open, with the time it took.
    fn fail(&self, class: Class, text: String) -> Outcome {
        let mut report = self.report.clone();
        report.reply.get_or_insert(text);
        report.duration_ms = self.started.elapsed().as_millis() as u64;
        Outcome::from_class(class, report)
    }

    /// The outcome for a refused exchange (greeting, EHLO), with the server's reply.
    fn refused(&mut self, (class, reply, text): ConnFailure) -> Outcome {
        apply_reply(&mut self.report, reply.as_ref());
        self.fail(class, text)
    }

    /// TLS over `plain`: after STARTTLS, or at once (implicit TLS).
    async fn tls(
        &self,
        plain: SmtpClient<TcpStream>,
        starttls: bool,
    ) -> Result<SmtpClient<TlsStream<TcpStream>>, Outcome> {
        let connector = tls_connector(self.settings.verify_certificates)
            .map_err(|e| self.fail(Class::Temporary, e))?;
        let host = self.host;
        let upgraded = if starttls {
            plain.start_tls(&connector, host).await
        } else {
            plain.into_tls(&connector, host).await
        };
        upgraded.map_err(|e| {
            let (host, error) = (host.to_string(), e.to_string());
            let detail = if starttls {
                Detail::StartTlsFailed { host, error }
            } else {
                Detail::TlsFailed { host, error }
            };
            self.fail(classify_error(&e), detail.to_string())
        })
    }
}

/// The first of `addrs` that accepts a connection within `timeout`; else what went
/// wrong with the last one tried.
async fn connect_first(
    host: &str,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), String> {
    let mut last_error = Detail::NoAddress {
        host: host.to_string(),
    }
    .to_string();
    for &addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, addr));
            }
            Ok(Err(e)) => {
                last_error = Detail::ConnectFailed {
                    addr: addr.to_string(),
                    error: e.to_string(),
                }
                .to_string()
            }
            Err(_) => {
                last_error = Detail::ConnectTimedOut {
                    addr: addr.to_string(),
                    after: format!("{timeout:?}"),
                }
                .to_string()
            }
        }
    }
    Err(last_error)
}

/// AUTH with the relay's credentials, by a mechanism the server offered.
async fn authenticate(
    client: &mut Client,
    caps: u32,
    user: &str,
    pass: &secrecy::SecretString,
) -> Result<(), mail_send::Error> {
    use secrecy::ExposeSecret;
    let creds = mail_send::Credentials::new(user, pass.expose_secret());
    let offered = ehlo_response(caps);
    match client {
        Client::Plain(c) => c.authenticate(&creds, &offered).await.map(|_| ()),
        Client::Tls(c) => c.authenticate(&creds, &offered).await.map(|_| ()),
    }
}

async fn greet(client: &mut Client) -> Result<(), ConnFailure> {
    let r = match client {
        Client::Plain(c) => tokio::time::timeout(c.timeout, c.read()).await,
        Client::Tls(c) => tokio::time::timeout(c.timeout, c.read()).await,
    };
    match r {
        Err(_) => Err((Class::Temporary, None, "no greeting: timed out".into())),
        Ok(Err(e)) => Err((classify_error(&e), None, format!("greeting: {e}"))),
        Ok(Ok(resp)) if resp.code == 220 => Ok(()),
        Ok(Ok(resp)) => Err((
            classify_reply(resp.code),
            Some(resp.clone()),
            format!("greeting: {}", resp.message),
        )),
    }
}

async fn ehlo(client: &mut Client, name: &str) -> Result<u32, ConnFailure> {
    let r = match client {
        Client::Plain(c) => c.ehlo(name).await,
        Client::Tls(c) => c.ehlo(name).await,
    };
    match r {
        Ok(resp) => Ok(resp.capabilities),
        Err(mail_send::Error::UnexpectedReply(resp)) => Err((
            classify_reply(resp.code),
            Some(resp.clone()),
            format!("EHLO: {}", resp.message),
        )),
        Err(e) => Err((classify_error(&e), None, format!("EHLO: {e}"))),
    }
}

fn ehlo_response(capabilities: u32) -> smtp_proto::EhloResponse<String> {
    let mut r = smtp_proto::EhloResponse::new(String::new());
    r.capabilities = capabilities;
    r.auth_mechanisms = smtp_proto::AUTH_PLAIN | smtp_proto::AUTH_LOGIN;
    r
}

enum Refusal {
    Reply(Response<String>),
    Error(mail_send::Error),
}

/// What came of one message's exchange.
struct Exchange {
    /// The final reply, or why the message was not taken.
    result: Result<Response<String>, Refusal>,
    /// Whether it ended before the content was sent (a session refused so is reset).
    before_content: bool,
    /// What became of the commands of the message announced with this one.
    next_opening: NextOpening,
}

enum NextOpening {
    /// None were sent: no message was named, or this one never reached its content.
    NotSent,
    /// Sent with the content: the replies to MAIL, RCPT and DATA.
    Read(Vec<Response<String>>),
    /// Sent, but the session ended before all three replies came.
    Lost,
}

/// MAIL FROM, RCPT TO and DATA for `envelope`, as one write, with DSN parameters where
/// the server offers DSN.
fn opening_commands(envelope: &Envelope, caps: u32) -> Vec<u8> {
    let (mail, rcpt) = envelope_commands(envelope, caps);
    [mail.as_bytes(), rcpt.as_bytes(), b"DATA\r\n"].concat()
}

fn envelope_commands(envelope: &Envelope, caps: u32) -> (String, String) {
    if caps & EXT_DSN != 0 {
        (
            format!(
                "MAIL FROM:<{}> RET=HDRS ENVID={}\r\n",
                envelope.mail_from,
                xtext(&envelope.envid)
            ),
            format!(
                "RCPT TO:<{rcpt}> NOTIFY=FAILURE,DELAY ORCPT=rfc822;{orcpt}\r\n",
                rcpt = envelope.rcpt_to,
                orcpt = xtext(&envelope.rcpt_to)
            ),
        )
    } else {
        (
            format!("MAIL FROM:<{}>\r\n", envelope.mail_from),
            format!("RCPT TO:<{}>\r\n", envelope.rcpt_to),
        )
    }
}

/// MAIL FROM, RCPT TO, DATA and the content of one message; the final reply on
/// success. `opening` holds the replies to MAIL, RCPT and DATA when they were sent
/// ahead with the last message; `next` is sent ahead with this one's content.
async fn transact<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SmtpClient<T>,
    envelope: &Envelope,
    raw: &[u8],
    caps: u32,
    opening: Option<Vec<Response<String>>>,
    next: Option<&Envelope>,
) -> Exchange {
    let refused = |refusal| Exchange {
        result: Err(refusal),
        before_content: true,
        next_opening: NextOpening::NotSent,
    };
    let timeout = client.timeout;
    if caps & EXT_PIPELINING != 0 {
        // RFC 2920: MAIL, RCPT and DATA in one write, their replies read in order.
        let replies = match opening {
            Some(replies) => replies,
            None => {
                let batch = opening_commands(envelope, caps);
                let read = tokio::time::timeout(timeout, async {
                    client.stream.write_all(&batch).await?;
                    client.stream.flush().await?;
                    read_replies(&mut client.stream, 3).await
                })
                .await;
                match read {
                    Err(_) => return refused(Refusal::Error(mail_send::Error::Timeout)),
                    Ok(Err(e)) => return refused(Refusal::Error(e)),
                    Ok(Ok(replies)) => replies,
                }
            }
        };
        let refusal = replies
            .iter()
            .take(2)
            .find(|r| !(200..300).contains(&r.code))
            .cloned();
        let data_code = replies.get(2).map(|r| r.code).unwrap_or(0);
        match (refusal, data_code) {
            (None, 354) => {}
            (Some(r), 354) => {
                // A server that says 354 after refusing the recipient gets an empty
                // message it will refuse too; the first refusal is the answer.
                let _ = client.cmd(b".\r\n").await;
                return refused(Refusal::Reply(r));
            }
            (Some(r), _) => return refused(Refusal::Reply(r)),
            (None, _) => {
                return refused(match replies.get(2) {
                    Some(r) => Refusal::Reply(r.clone()),
                    None => Refusal::Error(mail_send::Error::UnparseableReply),
                });
            }
        }
    } else {
        let (mail, rcpt) = envelope_commands(envelope, caps);
        for (command, ok) in [
            (mail.as_bytes(), 200..300),
            (rcpt.as_bytes(), 200..300),
            (b"DATA\r\n".as_slice(), 354..355),
        ] {
            if let Err(refusal) = expect(client, command, |c| ok.contains(&c)).await {
                return refused(refusal);
            }
        }
    }
    let mut wire = dot_stuff(raw);
    if let Some(next) = next {
        wire.extend_from_slice(&opening_commands(next, caps));
    }
    let wanted = if next.is_some() { 4 } else { 1 };
    let read = tokio::time::timeout(timeout, async {
        client.stream.write_all(&wire).await?;
        client.stream.flush().await?;
        read_replies(&mut client.stream, wanted).await
    })
    .await;
    let (result, ahead) = match read {
        Err(_) => (Err(Refusal::Error(mail_send::Error::Timeout)), None),
        Ok(Err(e)) => (Err(Refusal::Error(e)), None),
        Ok(Ok(mut replies)) => {
            let ahead = (replies.len() == 4).then(|| replies.split_off(1));
            let result = match replies.into_iter().next() {
                Some(reply) if (200..300).contains(&reply.code) => Ok(reply),
                Some(reply) => Err(Refusal::Reply(reply)),
                None => Err(Refusal::Error(mail_send::Error::UnparseableReply)),
            };
            (result, ahead)
        }
    };
    Exchange {
        result,
        before_content: false,
        next_opening: match (next, ahead) {
            (None, _) => NextOpening::NotSent,
            (Some(_), Some(replies)) => NextOpening::Read(replies),
            (Some(_), None) => NextOpening::Lost,
        },
    }
}

/// Reads up to `n` pipelined replies (several may arrive in one segment). Stops early
/// when the server closes the connection after a reply (a 421 does that).
async fn read_replies<S: AsyncRead + Unpin>(
    stream: &mut S,
    n: usize,
) -> Result<Vec<Response<String>>, mail_send::Error> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::with_capacity(n);
    let mut parser = smtp_proto::response::parser::ResponseReceiver::default();
    while out.len() < n {
        let read = stream.read(&mut buf).await?;
        if read == 0 {
            return if out.is_empty() {
                Err(mail_send::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection without replying",
                )))
            } else {
                Ok(out)
            };
        }
        let mut iter = buf[..read].iter();
        loop {
            match parser.parse(&mut iter) {
                Ok(reply) => {
                    out.push(reply);
                    parser.reset();
                    if out.len() == n {
                        break;
                    }
                }
                Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                Err(_) => return Err(mail_send::Error::UnparseableReply),
            }
        }
    }
    Ok(out)
}

async fn expect<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SmtpClient<T>,
    cmd: &[u8],
    ok: impl Fn(u16) -> bool,
) -> Result<Response<String>, Refusal> {
    let reply = client.cmd(cmd).await.map_err(Refusal::Error)?;
    if ok(reply.code) {
        Ok(reply)
    } else {
        Err(Refusal::Reply(reply))
    }
}

fn apply_reply(report: &mut AttemptReport, reply: Option<&Response<String>>) {
    if let Some(r) = reply {
        report.smtp_code = Some(r.code);
        report.enhanced_status = enhanced_status(r.esc);
        let text = r.message.replace(['\r', '\n'], " ");
        report.reply = Some(match &report.enhanced_status {
            Some(esc) => format!("{} {esc} {text}", r.code),
            None => format!("{} {text}", r.code),
        });
    }
}

/// The message as sent after DATA: lines that begin with "." get another (RFC 5321
/// §4.5.2), then the final ".". Bare LF is sent as CRLF.
pub fn dot_stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 64 + 5);
    let mut rest = raw;
    while !rest.is_empty() {
        if rest[0] == b'.' {
            out.push(b'.');
        }
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                let line = &rest[..i];
                out.extend_from_slice(line);
                if line.last() != Some(&b'\r') {
                    out.push(b'\r');
                }
                out.push(b'\n');
                rest = &rest[i + 1..];
            }
            None => {
                out.extend_from_slice(rest);
                out.extend_from_slice(b"\r\n");
                rest = &[];
            }
        }
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// xtext (RFC 3461 §4): "+" followed by two hex digits for '+', '=' and anything
/// outside '!'..'~'.
pub fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// A TLS version as mail logs write it ("TLSv1.3", as Postfix and OpenSSL do; rustls
/// names it `TLSv1_3`).
fn tls_version_name(version: tokio_rustls::rustls::ProtocolVersion) -> String {
    use tokio_rustls::rustls::ProtocolVersion;
    match version {
        ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}").replace('_', "."),
    }
}

/// The TLS set-up for connections that check certificates (`verify`) or not. Each is
/// built once: building one reads the system's trust store, ~10 ms, which every
/// connection paid before.
fn tls_connector(verify: bool) -> Result<TlsConnector, String> {
    static BUILT: [std::sync::OnceLock<Result<TlsConnector, String>>; 2] =
        [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    BUILT[usize::from(verify)]
        .get_or_init(|| mail_send::smtp::tls::build_tls_connector(!verify))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_at_line_start_are_doubled_and_the_end_is_marked() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
        assert_eq!(dot_stuff(b"a\nb"), b"a\r\nb\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
        assert_eq!(
            dot_stuff(b"a\r\n\r\n.\n..\r\n"),
            b"a\r\n\r\n..\r\n...\r\n.\r\n"
        );
    }

    #[test]
    fn xtext_encodes_plus_equals_and_spaces() {
        assert_eq!(xtext("a+b=c d@example.jp"), "a+2Bb+3Dc+20d@example.jp");
    }
}
