//! Where an error crosses into JS, in one place: the core's actionable error (DESIGN §3) becomes
//! a JS `Error` whose `code`, `exitCode`, `service`, `command` and `remediation` are properties
//! (its `message` the message), built with the `Env` on the JS thread, for a thrown error and a
//! rejected promise alike. JS reads properties; nothing reads a message.
//!
//! napi's own conversion of an error (`JsError`) carries a status and a message only, so an
//! export that can fail with the core's error returns `Outcome<T>` and is turned into a JS
//! result here: `sync` for a function, `promise` for a future (napi's `async fn` would convert
//! the error itself, off our hands).

use std::future::Future;

use napi::bindgen_prelude::*;
use orchestrator_core::error::{Actionable, Error as CoreError};

/// Why an export failed: the core's error, made actionable for the command that ran, or a
/// failure of the binding itself (a task that panicked, a value napi could not convert).
pub enum ExportFailure {
    Actionable(Box<Actionable>),
    Napi(Error),
}

impl From<Error> for ExportFailure {
    fn from(e: Error) -> Self {
        ExportFailure::Napi(e)
    }
}

pub type Outcome<T> = std::result::Result<T, ExportFailure>;

/// The core's error as the command `command` (as the user typed it) failed with it.
pub fn js_error(e: CoreError, command: &str) -> ExportFailure {
    ExportFailure::Actionable(Box::new(e.actionable(command)))
}

impl ExportFailure {
    /// The JS error: for an actionable one, an `Error` with the contract's fields as its
    /// properties; napi's own errors as napi makes them.
    fn into_js(self, env: &Env) -> Error {
        let a = match self {
            ExportFailure::Napi(e) => return e,
            ExportFailure::Actionable(a) => a,
        };
        let built = (|| -> Result<Error> {
            let mut obj =
                env.create_error(Error::new(Status::GenericFailure, a.message.clone()))?;
            obj.set_named_property("code", a.code.as_str())?;
            obj.set_named_property("exitCode", a.exit_code)?;
            match &a.service {
                Some(s) => obj.set_named_property("service", s.as_str())?,
                None => obj.set_named_property("service", Null)?,
            }
            obj.set_named_property("command", a.command.as_str())?;
            obj.set_named_property("remediation", a.remediation.clone())?;
            Ok(Error::from(obj.to_unknown()))
        })();
        // Building the object can only fail while the env tears down: then the message alone.
        built.unwrap_or_else(|e| Error::new(Status::GenericFailure, format!("{}: {e}", a.message)))
    }
}

/// The actionable error as a plain object, for a result that reports one without failing
/// (`status --strict`'s verdict beside the snapshot it judged).
#[napi_derive::napi(object)]
pub struct ActionableError {
    pub code: String,
    pub exit_code: i32,
    pub service: Option<String>,
    pub command: String,
    pub message: String,
    pub remediation: Vec<String>,
}

impl ActionableError {
    pub fn of(e: CoreError, command: &str) -> Self {
        let a = e.actionable(command);
        ActionableError {
            code: a.code,
            exit_code: a.exit_code,
            service: a.service,
            command: a.command,
            message: a.message,
            remediation: a.remediation,
        }
    }
}

/// A synchronous export: `f` runs now, its failure thrown as the JS error.
pub fn sync<T>(env: &Env, f: impl FnOnce() -> Outcome<T>) -> Result<T> {
    f().map_err(|e| e.into_js(env))
}

/// An asynchronous export's promise: the future runs on napi's tokio runtime; its failure
/// becomes the rejection, built on the JS thread.
pub fn promise<'env, T, F>(env: &'env Env, fut: F) -> Result<PromiseRaw<'env, T>>
where
    T: ToNapiValue + Send + 'static,
    F: Future<Output = Outcome<T>> + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(fut.await) }, |env, r| {
        r.map_err(|f| f.into_js(env))
    })
}
