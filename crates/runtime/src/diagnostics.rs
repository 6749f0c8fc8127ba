//! Our own diagnostics (tracing), for the addon and the supervisor alike: nothing unless
//! `ORCHESTRATOR_LOG` names a filter (`debug`, `orchestrator_runtime::deps=trace`, … as
//! tracing's `EnvFilter` reads it). Spans of the plan, the engine calls and the waits then go to
//! stderr with their durations; names of services, containers and images only, never an env
//! value.

/// Installs the subscriber when `ORCHESTRATOR_LOG` is set; `own_crate` is the caller's crate
/// name, which a bare level covers beside the core and the runtime.
pub fn init(own_crate: &str) {
    let Ok(filter) = std::env::var("ORCHESTRATOR_LOG") else {
        return;
    };
    // A bare level is ours only (our crates): other crates' diagnostics (an HTTP client's, say)
    // could carry what we never print.
    let scoped = if filter.contains('=') {
        filter.clone()
    } else {
        let level = filter.trim();
        format!("orchestrator_core={level},orchestrator_runtime={level},{own_crate}={level}")
    };
    match tracing_subscriber::EnvFilter::try_new(&scoped) {
        Ok(f) => {
            tracing_subscriber::fmt()
                .with_env_filter(f)
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
                .try_init()
                .ok();
        }
        Err(e) => eprintln!(
            "orchestrator: ORCHESTRATOR_LOG={filter:?} is not a filter ({e}); no diagnostics"
        ),
    }
}
