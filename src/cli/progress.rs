//! Progress for the commands that walk every tenant: a bar with rate and ETA when
//! stderr is a terminal; otherwise (cron, CI, `kubectl logs`) the bar is hidden and a
//! plain log line reports progress every few seconds.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

/// How often the plain log line is written when there is no terminal.
const LOG_EVERY: Duration = Duration::from_secs(2);

pub struct Progress {
    bar: ProgressBar,
    logger: Option<JoinHandle<()>>,
}

impl Progress {
    /// A progress display for `what` (e.g. "migrated"), counted in tenants.
    pub fn new(what: &'static str) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} tenants {msg} \
                     ({rate}, ETA {eta})",
                )
                .expect("valid template")
                .with_key(
                    "rate",
                    |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.1}/s", s.per_sec());
                    },
                )
                .progress_chars("=> "),
            );
            bar.set_message(what);
            bar.enable_steady_tick(Duration::from_millis(120));
            return Self { bar, logger: None };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
        let watched = bar.clone();
        let logger = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut last = u64::MAX;
            loop {
                tokio::time::sleep(LOG_EVERY).await;
                let (pos, len) = (watched.position(), watched.length().unwrap_or(0));
                if pos == last {
                    continue;
                }
                last = pos;
                let secs = started.elapsed().as_secs_f64();
                let rate = if secs > 0.0 { pos as f64 / secs } else { 0.0 };
                let eta = if rate > 0.0 {
                    format!("{:.0}s", len.saturating_sub(pos) as f64 / rate)
                } else {
                    "unknown".into()
                };
                tracing::info!("{what} {pos}/{len} tenants ({rate:.1}/s, ETA {eta})");
            }
        });
        Self {
            bar,
            logger: Some(logger),
        }
    }

    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    /// Removes the bar (or stops the log lines) before the summary is printed.
    pub fn finish(mut self) {
        self.bar.finish_and_clear();
        if let Some(l) = self.logger.take() {
            l.abort();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(l) = self.logger.take() {
            l.abort();
        }
    }
}
