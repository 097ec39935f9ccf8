//! TLS connections held by hand, as a real client's would be: several requests
//! on one connection (keep-alive), a later connection that resumes the first
//! one's session, and the exact reason a handshake or a read was refused.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::test_ca::Issued;

/// A client's TLS settings: its session cache is kept between connections.
pub struct TlsClient {
    config: Arc<ClientConfig>,
    port: u16,
}

/// One open connection.
pub struct Connection {
    stream: TlsStream<TcpStream>,
}

/// An HTTP response read from a connection.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }
}

impl TlsClient {
    /// Trusts `server_ca` and presents `identity`; TLS 1.3 only, so that the
    /// session tickets are what resumption uses.
    pub fn new(server_ca: &Path, identity: &Issued, port: u16) -> Self {
        let mut roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(server_ca).unwrap() {
            roots.add(certificate.unwrap()).unwrap();
        }
        let chain = CertificateDer::pem_file_iter(&identity.certificate)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&identity.key).unwrap();
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .unwrap();
        Self {
            config: Arc::new(config),
            port,
        }
    }

    /// Connects and completes the handshake, resuming a cached session if the
    /// server takes it.
    pub async fn connect(&self) -> Result<(Connection, HandshakeKind), std::io::Error> {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let stream = TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await?;
        let kind = stream.get_ref().1.handshake_kind().unwrap();
        Ok((Connection { stream }, kind))
    }
}

impl Connection {
    /// Sends one JSON POST and reads its answer, keeping the connection open.
    pub async fn post_json(
        &mut self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Answer, std::io::Error> {
        let body = serde_json::to_vec(body).unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            body.len()
        );
        let mut message = head.into_bytes();
        message.extend_from_slice(&body);
        if let Err(write) = self.write(&message).await {
            // The server may have refused with an alert: reading says which.
            let mut byte = [0u8; 1];
            return Err(match self.stream.read(&mut byte).await {
                Err(read) => read,
                Ok(_) => write,
            });
        }
        self.read_answer().await
    }

    async fn write(&mut self, message: &[u8]) -> Result<(), std::io::Error> {
        self.stream.write_all(message).await?;
        self.stream.flush().await
    }

    async fn read_answer(&mut self) -> Result<Answer, std::io::Error> {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            assert!(buffer.len() < 64 * 1024, "an HTTP head over 64 KiB");
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the connection before answering",
                ));
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .map(|(_, value)| value.parse().unwrap())
            .expect("sceau's JSON answers carry their length");
        let mut body = buffer[head_end + 4..].to_vec();
        while body.len() < length {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// The TLS alert inside an I/O error from a connection, if that is what it is.
pub fn alert_of(error: &std::io::Error) -> Option<rustls::AlertDescription> {
    let inner = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    match inner {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    }
}

/// A full handshake as `who` (a fresh client, no session to resume) and one
/// authorisation request for one signature to `path`: its status, or the TLS
/// alert that refused it.
pub async fn attempt(
    server_ca: &Path,
    who: &Issued,
    port: u16,
    path: &str,
) -> Result<u16, rustls::AlertDescription> {
    let client = TlsClient::new(server_ca, who, port);
    let outcome = match client.connect().await {
        Ok((mut connection, _)) => {
            connection
                .post_json(path, &serde_json::json!({ "num_signatures": 1 }))
                .await
        }
        Err(error) => Err(error),
    };
    outcome
        .map(|answer| answer.status)
        .map_err(|error| alert_of(&error).unwrap_or_else(|| panic!("{error}")))
}
