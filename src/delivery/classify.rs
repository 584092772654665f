//! Temporary or permanent: the one classifier of SMTP replies and client errors.
//! RFC 5321 §4.2.1: 2yz is success, 4yz a transient negative completion (try again),
//! 5yz a permanent one. Errors without a reply (connect, timeout, TLS) are transient:
//! the next try may reach another host or a mended one.

/// The class of an SMTP result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Success,
    Temporary,
    Permanent,
}

/// Classifies a reply code.
pub fn classify_reply(code: u16) -> Class {
    match code {
        200..=399 => Class::Success,
        500..=599 => Class::Permanent,
        // 4yz, and codes outside the RFC's ranges: nothing proves the failure lasting.
        _ => Class::Temporary,
    }
}

/// Classifies a mail-send error. Exhaustive on purpose: no `_` arm.
pub fn classify_error(e: &mail_send::Error) -> Class {
    use mail_send::Error as E;
    match e {
        E::UnexpectedReply(r) => classify_reply(r.code),
        // A relay refusing our login (535) says nothing about the message: the
        // credentials are the operator's to fix, and the mail waits for them, as with
        // Postfix's smtp_sasl_auth_soft_bounce (on by default).
        E::AuthenticationFailed(_) => Class::Temporary,
        E::Io(_) | E::Timeout | E::Tls(_) | E::UnparseableReply | E::MissingStartTls => {
            Class::Temporary
        }
        // Our own configuration is wrong (credentials, TLS name): the operator can fix
        // it, and mail waits for them rather than being lost.
        E::Auth(_)
        | E::MissingCredentials
        | E::UnsupportedAuthMechanism
        | E::InvalidTLSName
        | E::Base64(_) => Class::Temporary,
        // Programming errors of ours: never reached, since we always set both.
        E::MissingMailFrom | E::MissingRcptTo => Class::Permanent,
    }
}

/// The enhanced status code of a reply as text (`5.1.1`), when it has one.
pub fn enhanced_status(esc: [u8; 3]) -> Option<String> {
    (esc[0] != 0).then(|| format!("{}.{}.{}", esc[0], esc[1], esc[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codes_split_by_first_digit() {
        assert_eq!(classify_reply(250), Class::Success);
        assert_eq!(classify_reply(451), Class::Temporary);
        assert_eq!(classify_reply(421), Class::Temporary);
        assert_eq!(classify_reply(550), Class::Permanent);
        assert_eq!(classify_reply(554), Class::Permanent);
    }

    #[test]
    fn connection_errors_are_temporary_and_refusals_follow_their_code() {
        let io = mail_send::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify_error(&io), Class::Temporary);
        assert_eq!(classify_error(&mail_send::Error::Timeout), Class::Temporary);
        let r = smtp_proto::Response {
            code: 550,
            esc: [5, 1, 1],
            message: "no such user".to_string(),
        };
        assert_eq!(
            classify_error(&mail_send::Error::UnexpectedReply(r)),
            Class::Permanent
        );
        assert_eq!(enhanced_status([5, 1, 1]).as_deref(), Some("5.1.1"));
        assert_eq!(enhanced_status([0, 0, 0]), None);
    }
}
