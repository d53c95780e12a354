//! Bounded pieces of tokenizing: a host's callback between them (the kernel reschedules there).

/// Steps of work (a symbol made, a pair queued or merged, a token resegmented, a word) between
/// two calls of the tick.
pub const TICK_WORK: usize = 256;

/// Counts the steps of one text's tokenizing, calling the host's tick after every
/// [`TICK_WORK`] of them, and after each search of the whole text for a special token.
pub(crate) struct Ticker<'a> {
    tick: &'a mut dyn FnMut(),
    steps: usize,
}

impl<'a> Ticker<'a> {
    pub(crate) fn new(tick: &'a mut dyn FnMut()) -> Self {
        Ticker { tick, steps: 0 }
    }

    /// One step of work.
    pub(crate) fn step(&mut self) {
        self.steps += 1;
        if self.steps >= TICK_WORK {
            self.now();
        }
    }

    /// After a piece of work larger than a step (a search through the whole text).
    pub(crate) fn now(&mut self) {
        self.steps = 0;
        (self.tick)();
    }
}
