//! The JSON line a chaos run prints.

use serde::Serialize;

/// The outcome of one client's scenario.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    /// Scenario name.
    pub scenario: String,
    /// What happened: `kept`, `reaped`, `released`, `closed`, `refused`,
    /// `not_reaped`, `not_released`, `open`, `skipped`, `error`, `done`.
    pub verdict: String,
    /// What a well-behaved server does.
    pub expected: String,
    /// Whether `verdict` (and the close code, where the contract names one)
    /// is the expected one.
    pub pass: bool,
    /// Seconds from the behaviour's start (freeze, stop, link down, FIN,
    /// RST) until `/sessions` no longer listed the session. For a live
    /// client that was dropped: until the drop was seen; for no-hello and
    /// flood: from the upgrade (or the first flood message) to the close.
    pub release_s: Option<f64>,
    /// Close code the client saw, if any.
    pub close_code: Option<u16>,
    /// How the client's connection ended: `close`, `eof`, `reset`, `error`,
    /// or `null` while it is still open.
    pub ended: Option<String>,
    /// Slices the client read.
    pub slices: u64,
    /// The session id from `ready`.
    pub session_id: Option<String>,
    /// Anything worth knowing (why skipped, what failed).
    pub detail: Option<String>,
}

impl Verdict {
    /// A verdict for `scenario` with nothing observed yet.
    pub fn new(scenario: &str, expected: &str) -> Self {
        Self {
            scenario: scenario.to_owned(),
            verdict: String::new(),
            expected: expected.to_owned(),
            pass: false,
            release_s: None,
            close_code: None,
            ended: None,
            slices: 0,
            session_id: None,
            detail: None,
        }
    }

    /// Sets the verdict and computes `pass`.
    pub fn decide(mut self, verdict: &str, expected_close: Option<u16>) -> Self {
        self.verdict = verdict.to_owned();
        self.pass =
            verdict == self.expected && expected_close.is_none_or(|c| self.close_code == Some(c));
        self
    }

    /// The one-line JSON form.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
