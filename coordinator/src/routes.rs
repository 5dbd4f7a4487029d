//! The route table: every API and WebSocket route of the coordinator, as (path, handlers).
//!
//! Modules list their routes here instead of building routers of their own, so the table is
//! one value a test can walk: every route must answer 401 without credentials unless
//! `auth::is_public` names it, and gets the front door's and its family's checks (`api/tests.rs`).

use crate::{Config, Routes};

/// Every route.
pub fn table(config: &Config) -> Routes {
    let mut all = Vec::new();
    all.extend(crate::api::routes(config));
    all.extend(crate::auth::routes());
    all.extend(crate::tools::routes(config));
    all.extend(crate::speech::routes());
    all.extend(crate::tts::routes());
    all.extend(crate::ws::routes());
    all.extend(crate::metrics::routes());
    all.extend(crate::push::routes::routes());
    all
}

/// The paths of [`table`], for tests and docs.
pub fn paths(config: &Config) -> Vec<&'static str> {
    table(config).into_iter().map(|(path, _)| path).collect()
}
