//! An SMTP sink on loopback for the tests: Python's aiosmtpd (installed in
//! `.venv` by `make deps`) writing every message it accepts to a Maildir.
//! Stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpSink {
    child: Child,
    pub port: u16,
}

impl SmtpSink {
    pub fn start(port: u16, maildir: &Path) -> Self {
        let python = super::tools::tool("python3");
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd is installed in .venv (`make deps`)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, port }
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The raw text of every message in the Maildir, one per delivery.
pub fn messages(maildir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for folder in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(maildir.join(folder)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            out.push(std::fs::read_to_string(path).unwrap());
        }
    }
    out
}

/// A header's value in a raw message (first occurrence, unfolded).
pub fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\n\n").next().unwrap_or("");
    let mut value: Option<String> = None;
    for line in head.lines() {
        if let Some(current) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                current.push_str(line.trim_end());
                continue;
            }
            break;
        }
        if let Some((key, rest)) = line.split_once(':')
            && key.eq_ignore_ascii_case(name)
        {
            value = Some(rest.trim().to_owned());
        }
    }
    value
}

/// The Message-IDs of every message in the Maildir, sorted.
pub fn message_ids(maildir: &Path) -> Vec<String> {
    let mut ids: Vec<String> = messages(maildir)
        .iter()
        .map(|m| {
            header(m, "message-id")
                .expect("every notice has a Message-ID")
                .trim_matches(['<', '>'])
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

/// Waits (at most 30 s) until `done` holds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The decoded text body of a raw single-part message (7bit, 8bit,
/// quoted-printable or base64, as lettre picks).
pub fn body(message: &str) -> String {
    let message = message.replace("\r\n", "\n");
    let (_, raw) = message.split_once("\n\n").unwrap_or(("", ""));
    let encoding = header(&message, "content-transfer-encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "base64" => {
            use base64::Engine as _;
            let compact: String = raw.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .unwrap(),
            )
            .unwrap()
        }
        "quoted-printable" => {
            let mut bytes = Vec::new();
            let joined = raw.replace("=\n", "");
            let input = joined.as_bytes();
            let mut i = 0;
            while i < input.len() {
                if input[i] == b'=' && i + 2 < input.len() {
                    if let Ok(byte) =
                        u8::from_str_radix(std::str::from_utf8(&input[i + 1..i + 3]).unwrap(), 16)
                    {
                        bytes.push(byte);
                        i += 3;
                        continue;
                    }
                }
                bytes.push(input[i]);
                i += 1;
            }
            String::from_utf8(bytes).unwrap()
        }
        _ => raw.to_owned(),
    }
}

/// The enrolment links (the part after `/enrol#`) mailed to `address`, oldest first.
pub fn enrolment_links(maildir: &Path, address: &str) -> Vec<String> {
    messages(maildir)
        .into_iter()
        .filter(|m| header(m, "to").is_some_and(|to| to.contains(address)))
        .filter_map(|m| {
            body(&m)
                .split("/enrol#")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_owned)
        })
        .collect()
}
