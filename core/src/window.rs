//! A fixed-size sliding-window counter: ten slots over the window, two counts each.
//! Time never runs backwards inside a window (a clock jump back is treated as "no time
//! passed"), so a guardrail counted here cannot be loosened by a skewed clock.

const SLOTS: u64 = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    epoch: u64,
    a: u64,
    b: u64,
}

#[derive(Debug, Clone)]
pub struct SlidingWindow {
    slot_ms: u64,
    latest_ms: u64,
    slots: [Slot; SLOTS as usize],
}

impl SlidingWindow {
    pub fn new(window_ms: u64) -> Self {
        SlidingWindow {
            slot_ms: (window_ms / SLOTS).max(1),
            latest_ms: 0,
            slots: [Slot::default(); SLOTS as usize],
        }
    }

    pub fn window_ms(&self) -> u64 {
        self.slot_ms * SLOTS
    }

    fn epoch(&mut self, now_ms: u64) -> u64 {
        self.latest_ms = self.latest_ms.max(now_ms);
        self.latest_ms / self.slot_ms
    }

    pub fn add(&mut self, now_ms: u64, a: u64, b: u64) {
        let epoch = self.epoch(now_ms);
        let slot = &mut self.slots[(epoch % SLOTS) as usize];
        if slot.epoch != epoch {
            *slot = Slot { epoch, a: 0, b: 0 };
        }
        slot.a = slot.a.saturating_add(a);
        slot.b = slot.b.saturating_add(b);
    }

    /// Totals over the window ending at `now_ms`.
    pub fn sum(&mut self, now_ms: u64) -> (u64, u64) {
        let epoch = self.epoch(now_ms);
        self.slots
            .iter()
            .filter(|s| s.epoch <= epoch && s.epoch + SLOTS > epoch)
            .fold((0, 0), |(a, b), s| (a.saturating_add(s.a), b.saturating_add(s.b)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_expire_after_the_window() {
        let mut w = SlidingWindow::new(10_000);
        w.add(0, 1, 2);
        w.add(5_000, 1, 0);
        assert_eq!(w.sum(9_999), (2, 2));
        assert_eq!(w.sum(10_000), (1, 0));
        assert_eq!(w.sum(15_000), (0, 0));
    }

    #[test]
    fn a_clock_jump_back_does_not_forget() {
        let mut w = SlidingWindow::new(10_000);
        w.add(50_000, 3, 0);
        w.add(1_000, 1, 0);
        assert_eq!(w.sum(0), (4, 0));
    }
}
