//! Identity providers that misbehave, on 127.0.0.1: one that never answers,
//! one that hangs up, one whose JWKS is far too big. Each counts the
//! connections it accepted, so a test can tell whether sceau came at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Accepts and never answers.
    Hang,
    /// Accepts and closes at once.
    HangUp,
    /// Serves a discovery document whose JWKS is `bytes` long.
    HugeJwks { bytes: usize },
}

pub struct FakeProvider {
    pub issuer: String,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let base = issuer.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                match behaviour {
                    Behaviour::Hang => held.push(stream),
                    Behaviour::HangUp => drop(stream),
                    Behaviour::HugeJwks { bytes } => {
                        let base = base.clone();
                        tokio::spawn(async move {
                            let mut head = Vec::new();
                            let mut chunk = [0u8; 1024];
                            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
                                match stream.read(&mut chunk).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                                }
                            }
                            let body = if head.starts_with(b"GET /.well-known/openid-configuration")
                            {
                                serde_json::json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") })
                                    .to_string()
                                    .into_bytes()
                            } else {
                                let filler = "k".repeat(bytes);
                                format!(r#"{{"keys":[],"filler":"{filler}"}}"#).into_bytes()
                            };
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            );
                            let _ = stream.write_all(head.as_bytes()).await;
                            let _ = stream.write_all(&body).await;
                        });
                    }
                }
            }
        });
        Self {
            issuer,
            accepted,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}
