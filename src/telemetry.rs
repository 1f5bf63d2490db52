//! Tracing setup: human-readable lines, or JSON lines with `LOG_FORMAT=json`. Each JSON
//! line lists the fields of every span it was emitted in (`"spans":[…]`, outermost
//! first), so a line logged anywhere inside a request — also inside a handler's own
//! span — carries the request's `request_id` and `tenant_id`; a human line names them
//! in its `request{…}` prefix. Both are set when the request's span opens
//! (`http::make_span`), before tower-http's `started processing request`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        // Colours only on a terminal: a log file or collector gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests start several servers in one process) keeps the first.
    let _ = result;
}
