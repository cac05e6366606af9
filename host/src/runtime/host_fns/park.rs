//! Parked waits: the long `wait-exit`, `wait-output` or `sleep` a guest asked for, carried
//! out by the host with the guest's instance dropped (see `runtime::journal`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use regex::Regex;

use super::super::engine::Ticker;
use super::super::journal::Entry;
use super::budget::CpuMeter;
use super::process;
use crate::process_view::ProcessView;

/// A long wait the guest asked for, which the host carries out with the instance dropped.
pub(crate) enum Parked {
    /// `wait-exit` with this time-out.
    Exit(Duration),
    /// `wait-output` for this (checked) pattern, with this time-out.
    Output {
        pattern: String,
        re: Regex,
        timeout: Duration,
    },
    /// `sleep` for this long.
    Sleep(Duration),
}

impl Parked {
    /// Carries out the wait on `view` with no instance alive, and gives the entry the
    /// replay answers the parked call with. An error is `cpu` spent scanning output.
    /// `parked` counts the waits parked now.
    /// A parked sleep ends early when the process ends unless the verifier has seen the
    /// end (`saw_end`), as a live one does.
    pub(crate) async fn wait(
        self,
        view: ProcessView,
        saw_end: bool,
        cpu: &mut CpuMeter,
        ticker: &Arc<Ticker>,
        parked: &AtomicUsize,
    ) -> wasmtime::Result<Entry> {
        let _waiting = ticker.waiting();
        parked.fetch_add(1, Ordering::Relaxed);
        // Down however the wait ends, cancelled included.
        let _parked = scopeguard::guard((), |()| {
            parked.fetch_sub(1, Ordering::Relaxed);
        });
        Ok(match self {
            Parked::Exit(timeout) => {
                Entry::WaitExit(view.wait_exit(timeout).await.map(process::to_wit_state))
            }
            Parked::Sleep(d) if saw_end => Entry::Sleep(view.sleep(d).await),
            Parked::Sleep(d) => Entry::Sleep(tokio::select! {
                biased;
                slept = view.sleep(d) => slept,
                _ = view.ended() => true,
            }),
            Parked::Output {
                pattern,
                re,
                timeout,
            } => {
                let line = process::read_until(&view, cpu, &re, timeout).await?;
                Entry::WaitOutput {
                    pattern,
                    answer: Ok(line),
                }
            }
        })
    }
}
