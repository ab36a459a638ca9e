//! How the server opens the Wisp handshake with one client, from what its WebSocket upgrade
//! request said.
//!
//! A client that offers `Sec-WebSocket-Protocol` gets draft-6 v2 (the server's INFO first). A
//! client that offers nothing is either a v1 client or a v2 client older than draft 6, and the
//! server cannot tell which before it speaks. The legacy order (CONTINUE, then INFO) serves both
//! kinds that ignore an unknown packet, and pre-draft-6 v2 clients such as wisp-mux 5.1 need it:
//! given CONTINUE alone they wait 5 s for an INFO before falling back to v1. But the browser
//! clients most pages ship, epoxy-tls 1.5 (npm `latest`) and epoxy-tls 2.x with `wisp_v2 =
//! false`, break on that INFO (interop/README.md, peer bug 2). So a header-less request that
//! carries `Origin`, which every browser sends and native clients do not, gets plain v1 unless
//! `wisp.legacy_order_for_browsers` is set.

use crate::config::WispConfig;

/// How the handshake starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Draft-6 v2: the server sends INFO first.
    V2,
    /// v2 in the legacy order: CONTINUE, then INFO; the client's first packet tells whether it
    /// speaks v2 (INFO) or v1 (anything else).
    V2LegacyOrder,
    /// Plain v1: CONTINUE only.
    V1,
}

impl Opening {
    /// Chooses for a request that did or did not offer a subprotocol and carry `Origin`.
    pub fn choose(wisp: &WispConfig, offered_subprotocol: bool, from_browser: bool) -> Self {
        if !wisp.v2 {
            Self::V1
        } else if offered_subprotocol {
            Self::V2
        } else if !wisp.v2_without_subprotocol || (from_browser && !wisp.legacy_order_for_browsers)
        {
            Self::V1
        } else {
            Self::V2LegacyOrder
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case() {
        let default = WispConfig::default();
        let choose = Opening::choose;
        assert_eq!(choose(&default, true, true), Opening::V2);
        assert_eq!(choose(&default, true, false), Opening::V2);
        assert_eq!(choose(&default, false, false), Opening::V2LegacyOrder);
        assert_eq!(choose(&default, false, true), Opening::V1);

        let browsers_too = WispConfig {
            legacy_order_for_browsers: true,
            ..WispConfig::default()
        };
        assert_eq!(choose(&browsers_too, false, true), Opening::V2LegacyOrder);

        let draft6 = WispConfig {
            v2_without_subprotocol: false,
            legacy_order_for_browsers: true,
            ..WispConfig::default()
        };
        assert_eq!(choose(&draft6, false, false), Opening::V1);
        assert_eq!(choose(&draft6, false, true), Opening::V1);
        assert_eq!(choose(&draft6, true, true), Opening::V2);

        let v1 = WispConfig {
            v2: false,
            ..WispConfig::default()
        };
        assert_eq!(choose(&v1, true, false), Opening::V1);
    }
}
