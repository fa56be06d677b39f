//! A fixed-size sliding-window counter: ten slots over the window, two counts each.
//! Time never runs backwards inside a window (a clock jump back is treated as "no time
//! passed"), so a guardrail counted here cannot be loosened by a skewed clock.

const SLOTS: u64 = 10;

/// 12 bytes: the slot's epoch as an offset from the window's first (0 = never used) and
/// two counts. Per-downstream state is kept for every job type, so this is small.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    epoch: u32,
    a: u32,
    b: u32,
}

#[derive(Debug, Clone)]
pub struct SlidingWindow {
    slot_ms: u64,
    latest_ms: u64,
    /// Epoch of the first count: slot epochs are stored as `epoch - base + 1`.
    base: u64,
    slots: [Slot; SLOTS as usize],
}

impl SlidingWindow {
    pub fn new(window_ms: u64) -> Self {
        SlidingWindow {
            slot_ms: (window_ms / SLOTS).max(1),
            latest_ms: 0,
            base: u64::MAX,
            slots: [Slot::default(); SLOTS as usize],
        }
    }

    pub fn window_ms(&self) -> u64 {
        self.slot_ms * SLOTS
    }

    /// The latest time counted or asked about.
    pub fn latest_ms(&self) -> u64 {
        self.latest_ms
    }

    /// The current epoch, relative to the base (≥ 1), re-basing after ~4 billion slots.
    fn epoch(&mut self, now_ms: u64) -> u32 {
        self.latest_ms = self.latest_ms.max(now_ms);
        let absolute = self.latest_ms / self.slot_ms;
        if self.base == u64::MAX || absolute - self.base >= u64::from(u32::MAX) - 1 {
            self.base = absolute;
            self.slots = [Slot::default(); SLOTS as usize];
        }
        (absolute - self.base + 1) as u32
    }

    pub fn add(&mut self, now_ms: u64, a: u64, b: u64) {
        let epoch = self.epoch(now_ms);
        let slot = &mut self.slots[(epoch as u64 % SLOTS) as usize];
        if slot.epoch != epoch {
            *slot = Slot { epoch, a: 0, b: 0 };
        }
        let saturate = |v: u64| v.min(u64::from(u32::MAX)) as u32;
        slot.a = slot.a.saturating_add(saturate(a));
        slot.b = slot.b.saturating_add(saturate(b));
    }

    /// Totals over the window ending at `now_ms`.
    pub fn sum(&mut self, now_ms: u64) -> (u64, u64) {
        let epoch = self.epoch(now_ms);
        self.slots
            .iter()
            .filter(|s| s.epoch != 0 && s.epoch <= epoch && u64::from(s.epoch) + SLOTS > u64::from(epoch))
            .fold((0, 0), |(a, b), s| (a + u64::from(s.a), b + u64::from(s.b)))
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
    fn epochs_are_rebased_before_they_overflow() {
        let mut w = SlidingWindow::new(10);
        w.add(0, 1, 0);
        let far = u64::from(u32::MAX) * 2;
        w.add(far, 2, 0);
        assert_eq!(w.sum(far), (2, 0));
        assert_eq!(w.sum(far + 5), (2, 0));
        assert_eq!(w.sum(far + 10), (0, 0));
    }

    #[test]
    fn a_clock_jump_back_does_not_forget() {
        let mut w = SlidingWindow::new(10_000);
        w.add(50_000, 3, 0);
        w.add(1_000, 1, 0);
        assert_eq!(w.sum(0), (4, 0));
    }
}
