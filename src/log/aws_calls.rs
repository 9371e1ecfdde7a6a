//! One debug-log line per AWS operation: service, operation, outcome, HTTP
//! status, attempts and time taken. An SDK interceptor sees every call,
//! including the ones glbox expects to fail (a "not found" that means
//! "create it"). It reads only metadata, never a request or response body.

use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// The tracing target of these lines (`-v` shows them on the terminal too).
pub const TARGET: &str = "glbox::aws";

/// Added to every AWS client glbox builds (see `crate::aws`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallLog;

/// When the operation started, kept in the call's own config bag.
#[derive(Debug, Clone)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "glbox::CallLog"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("?", "?"), |m| (m.service(), m.name()));
        let millis = cfg
            .load::<Started>()
            .map_or(0, |s| s.0.elapsed().as_millis());
        let attempts = cfg.load::<RequestAttempts>().map_or(0, |a| a.attempts());
        let status = context.response().map(|r| r.status().as_u16());
        let request_id = context.response().and_then(|r| {
            ["x-amzn-requestid", "x-amz-request-id"]
                .iter()
                .find_map(|h| r.headers().get(*h))
                .map(str::to_string)
        });
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "ok".to_string(),
            Some(Err(err)) => match err.as_operation_error() {
                Some(op) => format!("error: {}", causes(op)),
                None => format!("error: {}", causes(err)),
            },
            None => "no result".to_string(),
        };
        tracing::debug!(
            target: TARGET,
            status,
            attempts,
            request_id,
            "{service} {operation}: {outcome} ({millis} ms)"
        );
        Ok(())
    }
}

/// An error and its causes on one line, each said once (AWS's code and
/// message, or what failed on the way: connect, timeout, ...).
fn causes(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn causes_are_chained_once_each() {
        let err = Layer(
            "connector error",
            Some(Box::new(Layer(
                "io error",
                Some(Box::new(Layer("io error", None))),
            ))),
        );
        assert_eq!(causes(&err), "connector error: io error");
    }
}
