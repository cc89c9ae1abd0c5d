//! How a swarm reports: a progress bar (indicatif) on a terminal, plain
//! periodic lines elsewhere (pipes, CI logs, `CI=true`), and JSON and JUnit
//! XML files for CI systems.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::scenario::randomise::Choices;
use crate::tools::swarm::{Progress, SeedResult, SwarmRun, wall_now};

/// Whether this looks like CI (`CI` set to anything but `""`, `0`,
/// `false`), where output must be plain lines.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !(v.is_empty() || v == "0" || v == "false"))
}

/// Shows a swarm's progress on stderr.
// Allowed: wall-clock time for the plain progress lines; never reaches a
// simulation.
#[allow(clippy::disallowed_types)]
pub struct ProgressPrinter {
    bar: Option<ProgressBar>,
    last_line: std::time::Instant,
    every: Duration,
}

impl ProgressPrinter {
    /// A bar when stderr is a terminal and not under CI, else a plain line
    /// every `every` (and one for each failure).
    pub fn new(total: Option<u64>, every: Duration) -> ProgressPrinter {
        let fancy = std::io::stderr().is_terminal() && !is_ci();
        let bar = fancy.then(|| {
            let bar = match total {
                Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            };
            let template = if total.is_some() {
                "{elapsed_precise} [{bar:40}] {pos}/{len} seeds {msg} (eta {eta})"
            } else {
                "{elapsed_precise} {spinner} {pos} seeds {msg}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        ProgressPrinter {
            bar,
            last_line: wall_now(),
            every,
        }
    }

    /// Print a line without breaking the bar.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// One result came in.
    pub fn update(&mut self, r: &SeedResult, p: Progress) {
        if r.verdict.failed() {
            self.println(&format!(
                "FAILED seed {} {}: {}\n  options: {}\n  replay: {}",
                r.seed,
                r.scenario,
                r.detail.as_deref().unwrap_or(&r.outcome),
                Choices(&r.options),
                r.replay_command()
            ));
        }
        let rate = p.done as f64 / p.elapsed.as_secs_f64().max(1e-9);
        match &self.bar {
            Some(bar) => {
                bar.set_position(p.done);
                bar.set_message(format!("{} failed, {rate:.1} seeds/s", p.failed));
            }
            None => {
                let last = p.total.is_some_and(|t| p.done == t);
                if self.last_line.elapsed() >= self.every || last {
                    self.last_line = wall_now();
                    let of = p.total.map_or(String::new(), |t| format!("/{t}"));
                    eprintln!(
                        "swarm: {}{of} seeds, {} failed, {rate:.1} seeds/s, {:.0} s",
                        p.done,
                        p.failed,
                        p.elapsed.as_secs_f64()
                    );
                }
            }
        }
    }

    /// Clear the progress bar (or print the last plain line).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Write the whole swarm (summary and every seed) as JSON.
pub fn write_json(run: &SwarmRun, path: &Path) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(run).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}

/// The swarm as JUnit XML: one test case per seed, named by scenario and
/// seed; failed seeds carry the outcome and the replay command.
pub fn junit_xml(run: &SwarmRun) -> String {
    let s = &run.summary;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"bootsim swarm\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
        s.seeds, s.failed, s.wall_secs
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"bootsim swarm {}\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
        s.partition, s.seeds, s.failed, s.wall_secs
    );
    for r in &run.results {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"seed {}\" time=\"{:.3}\"",
            xml(&r.scenario),
            r.seed,
            r.wall_us as f64 / 1e6
        );
        if r.verdict.failed() {
            let body = format!(
                "{}\noptions: {}\nreplay: {}\n",
                r.detail.as_deref().unwrap_or(&r.outcome),
                Choices(&r.options),
                r.replay_command()
            );
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"{:?}\">{}</failure>\n    </testcase>",
                xml(&r.outcome),
                r.verdict,
                xml(&body)
            );
        } else {
            out.push_str("/>\n");
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Escape text for XML content and attributes.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_drops_control_characters() {
        assert_eq!(xml("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
