//! Errors as JavaScript sees them: `Error` objects named `WispError` with `code` (the close
//! reason byte) and `reasonName`.

use wasm_bindgen::prelude::*;
use wisp_core::{CloseReason, WispError};

#[wasm_bindgen(inline_js = r#"
export class WispError extends Error {
  constructor(message, code, reasonName) {
    super(message);
    this.name = "WispError";
    this.code = code;
    this.reasonName = reasonName;
  }
}
export function make_wisp_error(message, code, reasonName) {
  return new WispError(message, code, reasonName);
}
export function is_wisp_error(value) {
  return value instanceof WispError;
}
"#)]
extern "C" {
    fn make_wisp_error(message: &str, code: u8, reason_name: Option<String>) -> JsValue;
    fn is_wisp_error(value: &JsValue) -> bool;
}

/// Whether `value` is an error raised by this package (a `WispError`, with `code` and
/// `reasonName`).
#[wasm_bindgen(js_name = isWispError, skip_typescript)]
pub fn is_wisp_error_js(value: &JsValue) -> bool {
    is_wisp_error(value)
}

/// A `WispError` for `reason` with `message`.
pub(crate) fn reason_error(message: &str, reason: CloseReason) -> JsValue {
    make_wisp_error(message, reason.0, reason.name().map(String::from))
}

/// The close reason that best describes `e`; `hint` is the stream's own close reason if known.
pub(crate) fn reason_of(e: &WispError, hint: Option<CloseReason>) -> CloseReason {
    match e {
        WispError::HandshakeClosed(r) | WispError::StreamRefused(r) => *r,
        WispError::StreamReceiveOverflow => CloseReason::ClientUnexpected,
        WispError::PasswordExtensionCredsInvalid => CloseReason::ExtensionsPasswordAuthFailed,
        WispError::CertAuthExtensionSigInvalid => CloseReason::ExtensionsCertAuthFailed,
        WispError::ExtensionsAuthRequired
        | WispError::PasswordExtensionNoCreds
        | WispError::CertAuthExtensionNoKey => CloseReason::ExtensionsAuthRequired,
        WispError::ExtensionsNotSupported(_) | WispError::IncompatibleProtocolVersion(..) => {
            CloseReason::IncompatibleExtensions
        }
        WispError::StreamAlreadyClosed => hint.unwrap_or(CloseReason::Voluntary),
        WispError::WsImplError(_)
        | WispError::WsImplSocketClosed
        | WispError::MuxTaskEnded
        | WispError::MuxMessageFailedToSend => hint.unwrap_or(CloseReason::Unexpected),
        _ => hint.unwrap_or(CloseReason::Unknown),
    }
}

/// The JS error for `e`.
pub(crate) fn to_js(e: &WispError, hint: Option<CloseReason>) -> JsValue {
    let reason = reason_of(e, hint);
    let message = match e {
        WispError::WsImplSocketClosed | WispError::MuxTaskEnded => {
            "the Wisp connection was lost".to_string()
        }
        WispError::StreamAlreadyClosed => format!("the stream is closed: {reason}"),
        e => e.to_string(),
    };
    reason_error(&message, reason)
}

/// A `TypeError` for bad arguments.
pub(crate) fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}
