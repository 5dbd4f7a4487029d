//! The fuzz targets of `piface-fuzz` (see its `src/lib.rs`) as bolero tests.
//!
//! Under `cargo test` each runs for a bounded time ([`BOUNDED`]) on its committed corpus
//! (`__fuzz__/<target>/corpus/`, plus any `crashes/` kept as regressions) and then on random
//! inputs. `scripts/fuzz.sh` runs each coverage-guided with libFuzzer (cargo-bolero) instead.

use std::time::Duration;

#[global_allocator]
static ALLOCATOR: piface_fuzz::alloc::Recording = piface_fuzz::alloc::Recording;

/// Random inputs per target under `cargo test`, after the corpus (`BOLERO_RANDOM_TEST_TIME_MS`
/// overrides it).
const BOUNDED: Duration = Duration::from_millis(400);

macro_rules! targets {
    ($($name:ident)*) => {$(
        #[test]
        fn $name() {
            bolero::check!().with_test_time(BOUNDED).for_each(|data: &[u8]| piface_fuzz::$name(data));
        }
    )*};
}

targets! {
    codec_frames
    delta_decode
    update_stream
    compact_lines
    compact_apply
    envelope_inspect
    line_splitter
    history_reader
    join_token
    agent_csr
    ws_client_message
    workspace_toml
}
