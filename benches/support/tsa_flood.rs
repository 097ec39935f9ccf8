//! Cached OCSP latency, idle and while time-stamp requests flood `POST /tsa`:
//! each HSM signature a time stamp costs must not slow the cached answers
//! relying parties depend on (issue: p99 under the flood within 1.2× idle).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Tasks posting time-stamp requests, each at its share of [`FLOOD_RATE`].
pub(crate) const FLOODERS: usize = 16;
/// Time-stamp requests per second, all flooders together: twenty times what
/// the TSA's bucket grants (50/s), and more signatures per second than the
/// HSM of a 2-core machine makes without one. A closed loop as fast as the
/// answers come would measure how the machine shares its cores between the
/// flooder and the probes rather than what the bucket spares.
pub(crate) const FLOOD_RATE: u64 = 1_000;
/// Tasks asking the cached OCSP answer, one request at a time each.
pub(crate) const PROBES: usize = 4;
/// Cached OCSP requests per second, all probes together, in the fixed-rate
/// measure: a relying parties' load that leaves the machine cores to spare.
/// Each latency is counted from when the request is sent: counted from when
/// it was due, tokio's millisecond timer would be most of what is measured.
pub(crate) const PROBE_RATE: u64 = 400;

/// How the probes ask.
#[derive(Clone, Copy)]
enum Mode {
    /// As fast as the answers come: the probes alone keep the cores busy,
    /// so any other load shows in their latency.
    Closed,
    /// [`PROBE_RATE`] requests per second, whatever the answers do.
    Fixed,
}

/// One instance's figures.
pub(crate) struct Report {
    label: String,
    idle: Percentiles,
    flooded: Percentiles,
    idle_fixed: Percentiles,
    flooded_fixed: Percentiles,
    granted: u64,
    refused: u64,
    other: u64,
    flood_seconds: f64,
}

struct Percentiles {
    count: usize,
    p50: Duration,
    p99: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let line = |name: &str, idle: &Percentiles, flooded: &Percentiles| {
            format!(
                "{name}: idle p50 {:.2} ms p99 {:.2} ms ({} answers); flooded p50 {:.2} ms p99 {:.2} ms ({} answers); \
                 p99 flooded/idle {:.2} (goal <= 1.2)",
                ms(idle.p50),
                ms(idle.p99),
                idle.count,
                ms(flooded.p50),
                ms(flooded.p99),
                flooded.count,
                flooded.p99.as_secs_f64() / idle.p99.as_secs_f64().max(1e-9),
            )
        };
        write!(
            f,
            "{:<22} {}\n  {:<22} {}\n  {:<22} time stamps: {:.0}/s granted, {:.0}/s refused (429){}",
            self.label,
            line("closed loop", &self.idle, &self.flooded),
            "",
            line(
                &format!("{PROBE_RATE}/s fixed"),
                &self.idle_fixed,
                &self.flooded_fixed
            ),
            "",
            self.granted as f64 / self.flood_seconds,
            self.refused as f64 / self.flood_seconds,
            if self.other > 0 {
                format!(", {} other answers", self.other)
            } else {
                String::new()
            }
        )
    }
}

/// A TimeStampReq (RFC 3161) for SHA-256 of `seed`, certReq true, by hand:
/// SEQUENCE { 1, MessageImprint { sha256, NULL; 32 octets }, TRUE }.
fn time_stamp_request(seed: u64) -> Vec<u8> {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(seed.to_be_bytes());
    let mut der = vec![
        0x30, 0x39, 0x02, 0x01, 0x01, 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09,
    ];
    der.extend_from_slice(&[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]);
    der.extend_from_slice(&[0x05, 0x00, 0x04, 0x20]);
    der.extend_from_slice(&digest);
    der.extend_from_slice(&[0x01, 0x01, 0xff]);
    der
}

/// Latencies of the cached OCSP answer at `base` + `path` for `run_for`.
async fn probe(client: &reqwest::Client, url: &str, run_for: Duration, mode: Mode) -> Percentiles {
    let deadline = Instant::now() + run_for;
    let mut tasks = Vec::new();
    for _ in 0..PROBES {
        let (client, url) = (client.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let period = Duration::from_micros(1_000_000 * PROBES as u64 / PROBE_RATE);
            let mut ticks = tokio::time::interval(period);
            while Instant::now() < deadline {
                if let Mode::Fixed = mode {
                    ticks.tick().await;
                }
                let started = Instant::now();
                let response = client.get(&url).send().await.unwrap();
                assert_eq!(response.status().as_u16(), 200, "cached OCSP answer");
                response.bytes().await.unwrap();
                seen.push(started.elapsed());
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    assert!(!all.is_empty(), "no OCSP answer measured");
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Percentiles {
        count: all.len(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Idle, then flooded: the cached OCSP latency at `base`.
pub(crate) async fn measure(label: &str, base: &str, path: &str, load: Option<Duration>) -> Report {
    let run_for = load.unwrap_or(Duration::from_millis(300));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("{base}{path}");
    // Warm the connections and the cache.
    probe(&client, &url, Duration::from_millis(200), Mode::Closed).await;
    let idle = probe(&client, &url, run_for, Mode::Closed).await;
    let idle_fixed = probe(&client, &url, run_for, Mode::Fixed).await;

    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let flood_client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut flooders = Vec::new();
    for task in 0..FLOODERS {
        let (client, stop, counts) = (flood_client.clone(), stop.clone(), counts.clone());
        let url = format!("{base}/tsa");
        flooders.push(tokio::spawn(async move {
            let mut seed = (task as u64) << 32;
            let period = Duration::from_micros(1_000_000 * FLOODERS as u64 / FLOOD_RATE);
            let mut ticks = tokio::time::interval(period);
            // A slow answer delays the next request rather than bunching them.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                ticks.tick().await;
                seed += 1;
                let answer = client
                    .post(&url)
                    .header("content-type", "application/timestamp-query")
                    .body(time_stamp_request(seed))
                    .send()
                    .await;
                let slot = match answer.map(|r| r.status().as_u16()) {
                    Ok(200) => 0,
                    Ok(429) => 1,
                    _ => 2,
                };
                counts[slot].fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let the flood reach its steady state (the bucket's burst spent).
    tokio::time::sleep(Duration::from_millis(500).min(run_for)).await;
    let before: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let started = Instant::now();
    let flooded = probe(&client, &url, run_for, Mode::Closed).await;
    let flooded_fixed = probe(&client, &url, run_for, Mode::Fixed).await;
    let flood_seconds = started.elapsed().as_secs_f64();
    let after: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.await.unwrap();
    }
    Report {
        label: label.to_owned(),
        idle,
        flooded,
        idle_fixed,
        flooded_fixed,
        granted: after[0] - before[0],
        refused: after[1] - before[1],
        other: after[2] - before[2],
        flood_seconds,
    }
}
