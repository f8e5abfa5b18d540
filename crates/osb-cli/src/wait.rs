//! Waiting for an asynchronous operation: a progress spinner (or progress lines when stderr is
//! not a terminal), the deadline, and Ctrl-C.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use osb_client::{PollOutcome, PollProgress, WaitForOperation};

use crate::output::{clean, duration, stderr_line};

/// How waiting ended.
#[derive(Debug)]
pub(crate) enum Waited {
    /// The poller finished (or stopped on an error).
    Done(Result<PollOutcome, osb_client::Error>),
    /// Ctrl-C.
    Interrupted,
}

/// Ctrl-C, listened for from creation on (so a signal right after the "waiting" line is
/// caught, not fatal).
struct Interrupt {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Interrupt {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Interrupt {
                signal: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Interrupt {}
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            match &mut self.signal {
                Some(signal) => {
                    if signal.recv().await.is_none() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Where progress goes.
#[derive(Clone)]
enum Display {
    Spinner(ProgressBar),
    Lines,
}

impl Display {
    fn new(label: &str) -> Self {
        if !std::io::stderr().is_terminal() {
            stderr_line(&format!(
                "{label}: waiting for the broker (Ctrl-C stops waiting; the operation goes on)"
            ));
            return Display::Lines;
        }
        let spinner = ProgressBar::new_spinner();
        // `wide_msg` is cut to the terminal's width, so the line never wraps.
        if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {wide_msg}") {
            spinner.set_style(style);
        }
        spinner.set_message(format!("{label}: waiting for the first poll"));
        spinner.enable_steady_tick(Duration::from_millis(120));
        Display::Spinner(spinner)
    }

    fn show(&self, label: &str, progress: &Progress<'_>) {
        match self {
            Display::Spinner(spinner) => spinner.set_message(progress.text(label, false)),
            Display::Lines => stderr_line(&progress.text(label, true)),
        }
    }

    fn finish(&self) {
        if let Display::Spinner(spinner) = self {
            spinner.finish_and_clear();
        }
    }
}

/// What one progress line shows.
#[derive(Debug)]
struct Progress<'a> {
    attempt: u32,
    elapsed: Duration,
    state: Option<&'a str>,
    description: Option<&'a str>,
    next_delay: Option<Duration>,
    retry_after: bool,
    invalid_reply: Option<String>,
}

impl<'a> From<&'a PollProgress<'a>> for Progress<'a> {
    fn from(p: &'a PollProgress<'a>) -> Self {
        Progress {
            attempt: p.attempt,
            elapsed: p.elapsed,
            state: p.state.map(|s| s.as_str()),
            description: p.description,
            next_delay: p.next_delay,
            retry_after: p.retry_after.is_some(),
            invalid_reply: p.invalid_reply.map(ToString::to_string),
        }
    }
}

impl Progress<'_> {
    /// One progress line: state, description, the next poll and (with `timing`) the poll count
    /// and elapsed time, which the spinner shows by itself.
    fn text(&self, label: &str, timing: bool) -> String {
        // Polling that ends without any state ended on `410 Gone` or `404 Not Found`.
        let ended = self.next_delay.is_none() && self.invalid_reply.is_none();
        let state = match self.state {
            Some(state) => state,
            None if ended => "the broker no longer knows it",
            None => "no valid reply yet",
        };
        let mut text = format!("{label}: {state}");
        if let Some(description) = self.description.filter(|d| !d.is_empty()) {
            text.push_str(&format!(" — {}", clean(description)));
        }
        let mut notes = Vec::new();
        if timing {
            notes.push(format!(
                "poll {}, {} elapsed",
                self.attempt,
                duration(self.elapsed)
            ));
        }
        if let Some(next) = self.next_delay {
            let why = if self.retry_after {
                " per Retry-After"
            } else {
                ""
            };
            notes.push(format!("next poll in {}{why}", duration(next)));
        }
        if !notes.is_empty() {
            text.push_str(&format!(" ({})", notes.join(", ")));
        }
        if let Some(e) = &self.invalid_reply {
            text.push_str(&format!("; last poll did not count: {}", clean(e)));
        }
        text
    }
}

/// Waits for `wait`, showing progress labelled `label`, until it ends or Ctrl-C.
pub(crate) async fn run(wait: WaitForOperation<'_>, label: &str, max: Option<Duration>) -> Waited {
    let mut interrupt = Interrupt::listen();
    let display = Display::new(label);
    let progress = display.clone();
    let label_owned = label.to_string();
    let mut wait = wait.on_progress(move |p| progress.show(&label_owned, &Progress::from(p)));
    if let Some(max) = max {
        wait = wait.max_duration(max);
    }
    let result = tokio::select! {
        result = wait => Waited::Done(result),
        () = interrupt.recv() => Waited::Interrupted,
    };
    display.finish();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_say_state_description_elapsed_and_next_poll() {
        let mut p = Progress {
            attempt: 2,
            elapsed: Duration::from_secs(3),
            state: Some("in progress"),
            description: Some("copying\u{1b}[2J data"),
            next_delay: Some(Duration::from_secs(5)),
            retry_after: true,
            invalid_reply: None,
        };
        assert_eq!(
            p.text("provisioning \"db\"", false),
            "provisioning \"db\": in progress — copying\\u{1b}[2J data \
             (next poll in 5s per Retry-After)"
        );
        assert_eq!(
            p.text("provisioning \"db\"", true),
            "provisioning \"db\": in progress — copying\\u{1b}[2J data \
             (poll 2, 3s elapsed, next poll in 5s per Retry-After)"
        );
        p.state = None;
        p.description = None;
        p.retry_after = false;
        p.invalid_reply = Some("the broker answered 500".into());
        assert_eq!(
            p.text("x", true),
            "x: no valid reply yet (poll 2, 3s elapsed, next poll in 5s); \
             last poll did not count: the broker answered 500"
        );
        p.invalid_reply = None;
        p.next_delay = None;
        assert_eq!(
            p.text("x", true),
            "x: the broker no longer knows it (poll 2, 3s elapsed)"
        );
    }
}
