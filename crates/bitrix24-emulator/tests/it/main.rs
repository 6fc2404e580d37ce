//! The emulator's integration tests, one binary: its HTTP API, control API, limits, the
//! documented fixtures it must reproduce, and a real third-party client (fast_bitrix24).
mod api;
mod billing;
mod control;
mod events;
mod fixtures;
mod limits;
mod python;
mod support;
mod work;
