//! Sending e-mail: a small SMTP client (RFC 5321) that hands each message to a relay, as
//! `sendmail` would. Kaunter speaks plain SMTP to the relay the operator names
//! (`KAUNTER_SMTP_RELAY`, host:port; typically the machine's own Postfix or the hosting
//! provider's relay on a private network), and the relay does TLS and authentication onwards:
//! credentials for the outside world never live in Kaunter's configuration.
//!
//! Messages are UTF-8 text, base64-encoded (no 8BITMIME needed, no dot-stuffing), with an
//! RFC 2047 subject, a Date and a Message-ID. Every step has a time-out.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long one SMTP step may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a message was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("the mail relay could not be reached: {0}")]
    Unreachable(String),
    #[error("the mail relay answered {code}: {text}")]
    Refused { code: u16, text: String },
    #[error("the mail relay did not answer in time")]
    TimedOut,
    #[error("the mail relay's answer could not be read: {0}")]
    Protocol(String),
    #[error("{0} is not an e-mail address Kaunter can send to")]
    BadAddress(String),
}

/// Where mail goes and whom it is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailer {
    /// The relay, `host:port`.
    pub relay: String,
    /// The sender address, e.g. `billing@kaunter.my`.
    pub from: String,
}

/// An address fit for the envelope: no spaces, angle brackets or line breaks, one `@`.
fn checked_address(address: &str) -> Result<&str, MailError> {
    let fine = address.len() <= 254
        && address.matches('@').count() == 1
        && !address.starts_with('@')
        && !address.ends_with('@')
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
    if fine {
        Ok(address)
    } else {
        Err(MailError::BadAddress(address.to_owned()))
    }
}

/// The message as sent after DATA: headers, a blank line, the body in base64 lines of 76.
pub fn render(
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    date: DateTime<Utc>,
    message_id: &str,
) -> String {
    let encoded_subject = if subject.is_ascii() && !subject.contains(['\r', '\n']) {
        subject.to_owned()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            STANDARD.encode(subject.replace(['\r', '\n'], " "))
        )
    };
    let mut message = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {encoded_subject}\r\nDate: {}\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        date.to_rfc2822()
    );
    let encoded = STANDARD.encode(body.replace("\r\n", "\n").replace('\n', "\r\n"));
    for chunk in encoded.as_bytes().chunks(76) {
        message.push_str(&String::from_utf8_lossy(chunk));
        message.push_str("\r\n");
    }
    message
}

struct Conversation {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Conversation {
    /// Reads one reply (all its lines) and checks its code is `expected`'s class.
    async fn expect(&mut self, expected: u16) -> Result<(), MailError> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(STEP_TIMEOUT, self.reader.read_line(&mut line))
                .await
                .map_err(|_| MailError::TimedOut)?
                .map_err(|error| MailError::Protocol(error.to_string()))?;
            if read == 0 || line.len() < 4 {
                return Err(MailError::Protocol(format!("short reply {line:?}")));
            }
            let code: u16 = line[..3]
                .parse()
                .map_err(|_| MailError::Protocol(format!("no reply code in {line:?}")))?;
            text.push_str(line[4..].trim_end());
            if line.as_bytes()[3] == b' ' {
                return if code / 100 == expected / 100 {
                    Ok(())
                } else {
                    Err(MailError::Refused { code, text })
                };
            }
            text.push(' ');
        }
    }

    async fn send(&mut self, line: &str) -> Result<(), MailError> {
        tokio::time::timeout(STEP_TIMEOUT, self.writer.write_all(line.as_bytes()))
            .await
            .map_err(|_| MailError::TimedOut)?
            .map_err(|error| MailError::Unreachable(error.to_string()))
    }
}

impl Mailer {
    /// Hands one message for `to` to the relay. Done when the relay has accepted it (250 after
    /// the data); any other answer is an error and the caller tries again later.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        let to = checked_address(to)?;
        let from = checked_address(&self.from)?;
        let stream = tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(&self.relay))
            .await
            .map_err(|_| MailError::TimedOut)?
            .map_err(|error| MailError::Unreachable(format!("{}: {error}", self.relay)))?;
        let (read, write) = stream.into_split();
        let mut smtp = Conversation {
            reader: BufReader::new(read),
            writer: write,
        };
        smtp.expect(220).await?;
        smtp.send("EHLO kaunter\r\n").await?;
        smtp.expect(250).await?;
        smtp.send(&format!("MAIL FROM:<{from}>\r\n")).await?;
        smtp.expect(250).await?;
        smtp.send(&format!("RCPT TO:<{to}>\r\n")).await?;
        smtp.expect(250).await?;
        smtp.send("DATA\r\n").await?;
        smtp.expect(354).await?;
        let id = format!("{}@kaunter", uuid::Uuid::now_v7());
        let message = render(from, to, subject, body, Utc::now(), &id);
        smtp.send(&message).await?;
        smtp.send(".\r\n").await?;
        smtp.expect(250).await?;
        // The message is the relay's now; a failed goodbye changes nothing.
        let _ = smtp.send("QUIT\r\n").await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_that_could_inject_commands_are_refused() {
        assert!(checked_address("pejabat@klinik.my").is_ok());
        for bad in [
            "",
            "no-at",
            "a@b@c",
            "x@y>\r\nRCPT TO:<z@w",
            "space @x.my",
            "@x.my",
        ] {
            assert!(checked_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_message_is_base64_text_with_an_encoded_subject() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let message = render(
            "billing@kaunter.my",
            "pejabat@klinik.my",
            "Langganan anda tamat – 3 hari lagi",
            "Terima kasih.\nKaunter",
            at,
            "1@kaunter",
        );
        assert!(message.contains("Subject: =?UTF-8?B?"));
        assert!(message.contains("Date: Sun, 6 Dec 2026 01:00:00 +0000\r\n"));
        let body = message
            .split("\r\n\r\n")
            .nth(1)
            .unwrap()
            .replace("\r\n", "");
        let decoded = String::from_utf8(STANDARD.decode(body).unwrap()).unwrap();
        assert_eq!(decoded, "Terima kasih.\r\nKaunter");
        assert!(message.lines().all(|line| line.len() <= 998));
    }
}
