//! Who answers when a run reaches a gate or a JOB rolling batch waiting for a confirmation:
//! `--confirm PUSH` answers yes once for PUSH (the point the run stopped at before); any
//! other question is asked on the terminal when stdin and stderr are both terminals, and is
//! a no otherwise (the run then stops there with exit 5).

use std::collections::BTreeSet;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex};

use plan_executor::{Confirmer, WaitPoint};

/// The answers of one `apply`, and the `--confirm` names no question used.
pub(super) struct Confirmations {
    pub(super) confirmer: Confirmer,
    unused: Arc<Mutex<BTreeSet<String>>>,
}

impl Confirmations {
    /// `--confirm` names first; then the terminal, when stdin and stderr are both one.
    pub(super) fn new(confirmed: &[String]) -> Self {
        let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        confirmations_with(confirmed, interactive.then_some(ask_on_terminal))
    }

    /// The pushes named by `--confirm` that did not wait for anything in this run.
    pub(super) fn unused(&self) -> Vec<String> {
        self.unused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

/// `--confirm` names first; then `ask` (a terminal), if there is one.
fn confirmations_with(
    confirmed: &[String],
    ask: Option<fn(&str, &WaitPoint) -> bool>,
) -> Confirmations {
    let unused: Arc<Mutex<BTreeSet<String>>> =
        Arc::new(Mutex::new(confirmed.iter().cloned().collect()));
    let names = Arc::clone(&unused);
    // One question on the terminal at a time, whichever pushes ask.
    let terminal = Mutex::new(());
    let confirmer = Confirmer::new(move |push, point| {
        let named = names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(push);
        if named {
            return true;
        }
        let Some(ask) = ask else { return false };
        let _one_at_a_time = terminal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        super::progress::with_bars_hidden(|| ask(push, point))
    });
    Confirmations { confirmer, unused }
}

/// `push X: batch 2/5 done, continue? [y/N]` on stderr, the answer from stdin; only `y` or
/// `yes` goes on.
fn ask_on_terminal(push: &str, point: &WaitPoint) -> bool {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\n{} [y/N] ", point.question(push));
    let _ = err.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// The pushes a run left waiting for a person, and the one command that continues them
/// (`resume` is the command that continues the run, `... --resume`); empty when none waits.
pub(super) fn waiting_lines(report: &plan_executor::RunReport, resume: &str) -> String {
    let waiting: Vec<&plan_executor::PushReport> = report
        .pushes
        .iter()
        .filter(|p| p.status.is_waiting())
        .collect();
    if waiting.is_empty() {
        return String::new();
    }
    let mut text = String::new();
    let mut command = resume.to_owned();
    for push in &waiting {
        let at = push
            .waiting
            .as_ref()
            .map_or_else(|| push.status.label().to_owned(), WaitPoint::describe);
        text.push_str(&format!(
            "\npush `{}` is {}: {at}",
            push.name,
            push.status.label()
        ));
        command.push_str(&format!(" --confirm {}", super::quoted(&push.name)));
    }
    text.push_str(&format!(
        "\n`{command}` approves and continues (recorded in the journal with your user name)"
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confirmed_push_is_approved_once_and_nothing_else_without_a_terminal() {
        let named = confirmations_with(&["app".to_owned(), "web".to_owned()], None);
        let confirmer = &named.confirmer;
        assert!(confirmer.answer("app", &WaitPoint::Gate));
        assert!(!confirmer.answer("app", &WaitPoint::Gate), "used once");
        assert!(!confirmer.answer("db", &WaitPoint::Gate));
        assert_eq!(named.unused(), vec!["web".to_owned()]);
        let asking = confirmations_with(&[], Some(|push, _| push == "db")).confirmer;
        assert!(asking.answer("db", &WaitPoint::Gate));
        assert!(!asking.answer("app", &WaitPoint::Gate));
    }
}
