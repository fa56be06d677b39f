//! The `smartretry` command's library: the HTTP server, its client, the TUI, the load
//! generator and the simulator. Every retry decision is the core engine's.
pub mod client;
pub mod loadtest;
pub mod serve;
pub mod sim;
pub mod tui;
