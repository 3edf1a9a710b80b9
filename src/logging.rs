//! Log set-up: `SCEPD_LOG` filter, stderr, text or JSON lines.
//!
//! Field values often come from outside (CSR subjects, device ids, webhook reasons). In text
//! logs every field is passed through [`crate::printable::escape`], so a `\n` or an ESC in a
//! subject cannot start a forged line or recolour the terminal. JSON logs need nothing extra:
//! the JSON encoder escapes control characters and keeps the values exact.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

use crate::printable::escape;

/// Log output formats (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber (once per process, from `main`).
pub fn init(log_format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCEPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journald would keep the escape codes.
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter);
    // Secrets never reach the log in the first place (they are not formatted anywhere);
    // JSON lines are for log shippers.
    match log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.fmt_fields(TextFields).init(),
    }
}

/// The text formatter's fields: `message name=value …` like the default formatter, every
/// value escaped.
#[derive(Debug, Default)]
pub struct TextFields;

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> std::fmt::Result {
        let mut visitor = Escaping {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Escaping<'w> {
    writer: Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl Visit for Escaping<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = write!(text, "{value:?}");
        let text = escape(&text);
        let sep = if std::mem::take(&mut self.first) {
            ""
        } else {
            " "
        };
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = match (name, self.writer.has_ansi_escapes()) {
            ("message", _) => write!(self.writer, "{sep}{text}"),
            // The default formatter's look on a terminal: italic name, dimmed `=`.
            (name, true) => write!(
                self.writer,
                "{sep}\u{1b}[3m{name}\u{1b}[0m\u{1b}[2m=\u{1b}[0m{text}"
            ),
            (name, false) => write!(self.writer, "{sep}{name}={text}"),
        };
    }
}

/// An error and its sources in one line, `outer: inner: …`, a cause left out when the text
/// already ends with it (many errors repeat their source). For logs and operator messages:
/// hyper's and the postgres client's top-level texts ("client error", "error performing TLS
/// handshake") say nothing without their causes.
pub fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_log_fields_cannot_emit_control_characters() {
        let buf = Buffer::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .fmt_fields(TextFields)
            .finish();
        let subject = "CN=X\n2026-12-03T00:00:00Z  INFO forged \u{1b}[31mred";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(subject = %subject, plain = subject, n = 3, "issued {subject}");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(
            text.contains(
                "issued CN=X\\n2026-12-03T00:00:00Z  INFO forged \\x1b[31mred subject=CN=X\\n"
            ),
            "{text}"
        );
        assert!(text.contains(" n=3"), "{text}");
    }
}
