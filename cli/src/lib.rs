//! The `smartretry` command's library: the simulator (and, later, the server and TUI).
pub mod sim;
