//! The long answers: a followed log copied to stdout as it comes, and `wait`, which reads
//! the manager's event stream until it says `running` (or why it never will).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use tokio::time::Instant;

use super::CtlError;
use super::client::Client;
use super::locate;
use crate::api::v1::{Event, Phase};
use crate::error_text;

/// Streams a text answer to stdout as it comes. With `follow`, the manager going away is
/// the normal end; a closed stdout (`| head`) always is.
pub async fn copy_to_stdout(client: &Client, path: &str, follow: bool) -> Result<(), CtlError> {
    let mut res = client.send(Method::GET, path).await?;
    let mut out = std::io::stdout();
    loop {
        match res.chunk().await {
            Ok(Some(chunk)) => {
                if out.write_all(&chunk).and_then(|_| out.flush()).is_err() {
                    return Ok(());
                }
            }
            Ok(None) => return Ok(()),
            Err(_) if follow => return Ok(()),
            Err(e) => {
                return Err(CtlError::Unreachable(format!(
                    "the manager went away: {}",
                    error_text::chain(&e)
                )));
            }
        }
    }
}

/// Splits a server-sent event stream into the JSON `data` of each event.
#[derive(Default)]
struct EventReader {
    /// Bytes, not text: a chunk may end inside a character (a process name in UTF-8);
    /// only whole events are decoded.
    buf: Vec<u8>,
}

impl EventReader {
    /// Adds a chunk of the stream; returns the events it completed (comments, keep-alives
    /// and events this client cannot read are skipped).
    fn push(&mut self, chunk: &[u8]) -> Vec<Event<'static>> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let bytes: Vec<u8> = self.buf.drain(..end + 2).collect();
            let block = String::from_utf8_lossy(&bytes);
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if data.is_empty() {
                continue;
            }
            if let Ok(e) = serde_json::from_str::<Event<'static>>(&data.join("\n")) {
                events.push(e);
            }
        }
        events
    }
}

/// How one attempt at `wait` ended, short of success.
enum Attempt {
    /// Not reachable (yet): try again until the deadline.
    Retry(String),
    /// An answer that will not change by trying again.
    Final(CtlError),
}

/// Waits until the manager of `file` (or at `url`) reports `running`, reconnecting while
/// it cannot be reached: it may not have started yet.
pub async fn wait(
    file: &Path,
    url: Option<&str>,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(), CtlError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    let mut reached = false;
    let mut last = String::from("no attempt made");
    let timed_out = || {
        CtlError::Timeout(format!(
            "the manager was not running after {:.1}s",
            timeout.as_secs_f64()
        ))
    };
    loop {
        let attempt = tokio::time::timeout_at(deadline, once(file, url, token, &mut reached)).await;
        match attempt {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(Attempt::Final(e))) => return Err(e),
            Ok(Err(Attempt::Retry(why))) => last = why,
            Err(_) if reached => return Err(timed_out()),
            Err(_) => {}
        }
        if Instant::now() + pause >= deadline {
            return Err(if reached {
                timed_out()
            } else {
                CtlError::Unreachable(format!(
                    "could not reach the manager within {:.1}s: {last}",
                    timeout.as_secs_f64()
                ))
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Shuts the manager down and waits until it is gone: its event stream is open before the
/// shutdown is asked for, and ends only when the supervisor has stopped every process (or
/// the manager is gone). Returns how long it took.
pub async fn shut_down(client: &Client) -> Result<Duration, CtlError> {
    let began = Instant::now();
    let mut events = client.send(Method::GET, "/api/v1/events").await?;
    let _: crate::api::v1::Accepted = client.json(Method::POST, "/api/v1/shutdown").await?;
    while let Ok(Some(_)) = events.chunk().await {}
    Ok(began.elapsed())
}

/// One connection to the event stream: succeeds on phase `running`, fails for good on a
/// start-up failure, a shutdown or a refusal.
async fn once(
    file: &Path,
    url: Option<&str>,
    token: Option<&str>,
    reached: &mut bool,
) -> Result<(), Attempt> {
    let retry_unreachable = |e: CtlError| match e {
        CtlError::Unreachable(why) => Attempt::Retry(why),
        e => Attempt::Final(e),
    };
    let target = locate::locate(file, url, token).map_err(retry_unreachable)?;
    let client = Client::new(target).map_err(Attempt::Final)?;
    let mut res = client
        .send(Method::GET, "/api/v1/events")
        .await
        .map_err(retry_unreachable)?;
    *reached = true;
    let mut reader = EventReader::default();
    let mut shutting_down = false;
    while let Ok(Some(chunk)) = res.chunk().await {
        for event in reader.push(&chunk) {
            match event {
                Event::Phase {
                    phase: Phase::Running,
                } => return Ok(()),
                Event::Phase {
                    phase: Phase::Shutdown | Phase::ForceShutdown,
                } => shutting_down = true,
                Event::StartupFailed { message } => {
                    return Err(Attempt::Final(CtlError::Failed(format!(
                        "start-up failed: {message}"
                    ))));
                }
                _ => {}
            }
        }
    }
    Err(Attempt::Final(CtlError::Failed(if shutting_down {
        "the manager shut down before it was running".into()
    } else {
        "the manager went away before it was running".into()
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_across_chunks_and_comments_skipped() {
        let mut r = EventReader::default();
        assert!(
            r.push(b": keep-alive\n\nevent: phase\ndata: {\"event\":\"pha")
                .is_empty()
        );
        let got = r.push(b"se\",\"phase\":\"running\"}\n\nevent: startup-failed\n");
        assert_eq!(
            got,
            vec![Event::Phase {
                phase: Phase::Running
            }]
        );
        let got = r.push(b"data: {\"event\":\"startup-failed\",\"message\":\"x\"}\n\n");
        assert_eq!(
            got,
            vec![Event::StartupFailed {
                message: "x".into()
            }]
        );
        // A character split between two chunks arrives whole.
        let event = "data: {\"event\":\"startup-failed\",\"message\":\"caf\u{e9}\"}\n\n";
        let split = event.find('\u{e9}').unwrap() + 1;
        assert!(r.push(&event.as_bytes()[..split]).is_empty());
        assert_eq!(
            r.push(&event.as_bytes()[split..]),
            vec![Event::StartupFailed {
                message: "caf\u{e9}".into()
            }]
        );
    }
}
