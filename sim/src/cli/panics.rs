//! (Binary only.) The CLI's panic hook.
//!
//! A closed stdout (`bootsim run ... | head`) makes `println!` panic; the
//! hook ends the process quietly with status 141 (128 + SIGPIPE), as a Unix
//! tool killed by SIGPIPE would, instead of printing a panic. While a swarm
//! runs, the panics of simulations are caught and reported per seed, so the
//! hook keeps them quiet; any other panic is reported by the standard hook.

use std::panic::PanicHookInfo;
use std::sync::OnceLock;

/// Exit status after stdout was closed under us.
pub const EXIT_BROKEN_PIPE: i32 = 141;

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static>;

/// The standard hook, taken once when ours is first installed.
static STANDARD: OnceLock<Hook> = OnceLock::new();

/// Whether panics other than a closed stdout are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panics {
    /// Printed by the standard hook (the CLI's own code).
    Reported,
    /// Silent: a swarm catches and reports them per seed.
    CaughtPerSeed,
}

/// Install the hook for what runs next.
pub fn install(panics: Panics) {
    STANDARD.get_or_init(std::panic::take_hook);
    std::panic::set_hook(Box::new(move |info| {
        if closed_stdout(info) {
            std::process::exit(EXIT_BROKEN_PIPE);
        }
        if panics == Panics::Reported
            && let Some(standard) = STANDARD.get()
        {
            standard(info);
        }
    }));
}

/// Whether the panic is `print!` failing on a closed pipe.
fn closed_stdout(info: &PanicHookInfo<'_>) -> bool {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.starts_with("failed printing to stdout") && message.contains("Broken pipe")
}
