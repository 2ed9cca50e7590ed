//! The progress bar on stderr: messages answered while sending, then deliveries arrived.
//!
//! It reads the ledger's and the recorder's counters ten times a second, so the hot path pays
//! nothing for it. It appears only once the run has lasted a second, and indicatif draws
//! nothing when stderr is not a terminal.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::load::Ledger;
use super::sink::Recorder;

const SHOW_AFTER: Duration = Duration::from_secs(1);
const REFRESH: Duration = Duration::from_millis(100);

/// The running bar; [`Progress::finish`] clears it.
pub(crate) struct Progress {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Progress {
    /// Shows the progress of `messages` messages making `per_message` deliveries each.
    pub(crate) fn start(
        ledger: Arc<Ledger>,
        recorder: Arc<Recorder>,
        messages: u64,
        per_message: u64,
    ) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(draw(ledger, recorder, messages, per_message, stop.clone()));
        Self { stop, task }
    }

    pub(crate) async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn draw(
    ledger: Arc<Ledger>,
    recorder: Arc<Recorder>,
    messages: u64,
    per_message: u64,
    stop: CancellationToken,
) {
    tokio::select! {
        () = tokio::time::sleep(SHOW_AFTER) => {}
        () = stop.cancelled() => return,
    }
    let bar = ProgressBar::with_draw_target(Some(messages), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg:>10} [{bar:40}] {pos}/{len} {per_sec} {elapsed_precise}",
    )
    .map(|style| style.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar.set_message("sending");
    let mut delivering = false;
    loop {
        let answered = ledger.answered_count();
        if answered < messages {
            bar.set_position(answered);
        } else if per_message > 0 {
            if !delivering {
                delivering = true;
                bar.reset();
                bar.set_message("delivering");
            }
            bar.set_length(ledger.acked() * per_message);
            bar.set_position(recorder.distinct());
        }
        tokio::select! {
            () = tokio::time::sleep(REFRESH) => {}
            () = stop.cancelled() => break,
        }
    }
    bar.finish_and_clear();
}
