//! What the TUI shows: the server's data from the last refresh and the screen state that
//! keys change (`view.rs` draws it).

use std::path::PathBuf;

use smartretry::BreakerSnapshot;
use smartretry::{BudgetSnapshot, MetricsSnapshot, Override, Policy, Preview, Strategy};

use crate::client::Client;
use crate::serve::alerts::Alert;
use crate::serve::Recent;

/// Below this width the panels become tabs.
pub const NARROW_WIDTH: u16 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Strategy,
    Live,
    Analytics,
    Alerts,
}

impl Panel {
    pub const TABS: [Panel; 4] = [Panel::Strategy, Panel::Live, Panel::Analytics, Panel::Alerts];

    pub fn title(self) -> &'static str {
        match self {
            Panel::Strategy => "Strategy",
            Panel::Live => "Live recommendations",
            Panel::Analytics => "Analytics",
            Panel::Alerts => "Alerts",
        }
    }
}

/// What the server said on the last refresh.
#[derive(Default)]
pub struct Data {
    pub strategy: Option<Strategy>,
    pub metrics: Option<MetricsSnapshot>,
    pub breakers: Vec<BreakerSnapshot>,
    pub budget: Option<BudgetSnapshot>,
    pub refused_429: u64,
    pub recent: Vec<Recent>,
    pub alerts: Vec<Alert>,
    pub policies: Vec<Policy>,
    pub overrides: Vec<Override>,
}

/// The whole screen state; keys change it, `view::draw` shows it.
pub struct Tui {
    pub(super) client: Client,
    pub(super) runtime: tokio::runtime::Runtime,
    pub url: String,
    pub data: Data,
    /// Index into `data.recent` (newest first).
    pub selected: usize,
    /// Focused panel (wide) / shown tab (narrow).
    pub panel: Panel,
    pub show_alerts: bool,
    pub preview: Option<Preview>,
    /// `Some` while typing an override delay.
    pub override_input: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub(super) export_dir: PathBuf,
    pub(super) quit: bool,
}
