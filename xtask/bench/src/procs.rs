//! Broker processes: start one, find its address, read its memory use.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::error::{BenchError, Result};

/// A server the harness started; killed when dropped.
#[derive(Debug)]
pub(crate) struct Proc {
    pub(crate) child: Child,
    /// `http://host:port`.
    pub(crate) url: String,
}

impl Proc {
    /// Starts `command` with its output piped, and waits (up to a minute) for the line that says
    /// `listening on http://ADDR`. Standard error goes to `log`.
    pub(crate) fn start(name: &str, mut command: Command, log: &Path) -> Result<Proc> {
        let log_file = std::fs::File::create(log)
            .map_err(BenchError::io(format!("cannot create {}", log.display())))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        let mut child = command
            .spawn()
            .map_err(BenchError::io(format!("cannot start {name}")))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(BenchError::Setup(format!("{name}: no standard output")));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            let mut sent = false;
            loop {
                line.clear();
                match lines.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if !sent && let Some(url) = listening_url(&line) {
                            let _ = tx.send(url);
                            sent = true;
                        }
                    }
                }
            }
            // Keep draining so the server never blocks on a full pipe.
            let _ = lines.read_to_end(&mut Vec::new());
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => Ok(Proc { child, url }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(log).unwrap_or_default();
                Err(BenchError::Setup(format!(
                    "{name} did not start listening; its log:\n{log}"
                )))
            }
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL in a line such as `kv-broker listening on http://127.0.0.1:8080 (database …)`.
pub(crate) fn listening_url(line: &str) -> Option<String> {
    let at = line.find("listening on http://")?;
    let rest = &line[at + "listening on ".len()..];
    let url = rest.split_whitespace().next()?;
    Some(url.trim_end_matches('/').to_string())
}

/// Resident memory of process `pid` in KiB: (current `VmRSS`, peak `VmHWM`).
pub(crate) fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_announced_url() {
        assert_eq!(
            listening_url("kv-broker listening on http://127.0.0.1:4000 (database sqlite:x)\n"),
            Some("http://127.0.0.1:4000".into())
        );
        assert_eq!(
            listening_url("memory broker listening on http://127.0.0.1:9/"),
            Some("http://127.0.0.1:9".into())
        );
        assert_eq!(listening_url("Basic auth: user \"a\""), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_its_own_memory() {
        let (rss, peak) = rss_kib(std::process::id()).unwrap_or_default();
        assert!(rss > 0 && peak >= rss);
    }
}
