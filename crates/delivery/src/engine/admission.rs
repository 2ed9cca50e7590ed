//! Who may start a request now: each endpoint's adaptive allowance, and the node's in-flight
//! budget with a share that only answering endpoints may use. Pure state, no I/O or clock, so
//! the rules are unit-tested here and the engine only asks and reports.
//!
//! - **Allowance per endpoint.** An endpoint this node has not heard from yet may have one
//!   request in flight; each answer doubles its allowance up to `endpoint_concurrency`. A
//!   request that gets no answer (timeout, refused or reset connection) drops the endpoint to
//!   one probe in flight until an answer comes back.
//! - **A reserved share of the budget.** Requests to endpoints that are not known to answer
//!   (not heard from yet, or silent since their last request) may use at most
//!   `max_in_flight - reserved` slots; the `reserved` rest is only for endpoints that answer.
//!   Dead endpoints therefore never hold every slot, however many there are: each holds one
//!   probe, and together they hold at most the unreserved share.

/// Whether an endpoint answers, as far as this node knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Standing {
    /// No request has finished yet.
    #[default]
    Unknown,
    /// Its last finished request got an HTTP answer (any status).
    Answering,
    /// Its last finished request got none.
    Silent,
}

impl Standing {
    /// Whether requests to it use the share of the budget that answering endpoints may not
    /// count on.
    pub(super) fn unproven(self) -> bool {
        self != Self::Answering
    }
}

/// One endpoint's adaptive limit on requests in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Allowance {
    standing: Standing,
    limit: usize,
}

impl Default for Allowance {
    fn default() -> Self {
        Self {
            standing: Standing::Unknown,
            limit: 1,
        }
    }
}

impl Allowance {
    pub(super) fn standing(&self) -> Standing {
        self.standing
    }

    /// Requests the endpoint may have in flight now, given the configured maximum.
    pub(super) fn limit(&self, concurrency: usize) -> usize {
        self.limit.clamp(1, concurrency.max(1))
    }

    /// A request finished: `answered` when the endpoint sent an HTTP answer.
    pub(super) fn finished(&mut self, answered: bool, concurrency: usize) {
        if answered {
            self.standing = Standing::Answering;
            self.limit = self.limit.saturating_mul(2).min(concurrency.max(1));
        } else {
            self.standing = Standing::Silent;
            self.limit = 1;
        }
    }
}

/// The node's requests in flight, against `max_in_flight` and the reserved share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Budget {
    max: usize,
    reserved: usize,
    in_flight: usize,
    unproven: usize,
}

/// Whether a lane may start a request now, and if not, what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    Yes,
    /// The node is at `max_in_flight`.
    NodeFull,
    /// The share for endpoints not known to answer is taken.
    UnprovenFull,
}

impl Budget {
    /// A quarter of the budget (at least one slot when there are two) is reserved.
    pub(super) fn new(max_in_flight: usize) -> Self {
        let max = max_in_flight.max(1);
        let reserved = if max >= 2 { (max / 4).max(1) } else { 0 };
        Self {
            max,
            reserved,
            in_flight: 0,
            unproven: 0,
        }
    }

    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub(super) fn has_room(&self) -> bool {
        self.in_flight < self.max
    }

    /// Requests that endpoints not known to answer may still start.
    pub(super) fn unproven_room(&self) -> usize {
        (self.max - self.reserved)
            .saturating_sub(self.unproven)
            .min(self.max.saturating_sub(self.in_flight))
    }

    pub(super) fn admit(&self, standing: Standing) -> Admit {
        if self.in_flight >= self.max {
            Admit::NodeFull
        } else if standing.unproven() && self.unproven >= self.max - self.reserved {
            Admit::UnprovenFull
        } else {
            Admit::Yes
        }
    }

    /// Counts a request started; `unproven` as its endpoint's standing was at the start.
    pub(super) fn start(&mut self, unproven: bool) {
        self.in_flight += 1;
        if unproven {
            self.unproven += 1;
        }
    }

    /// Counts a request finished, with the `unproven` it was started with.
    pub(super) fn finish(&mut self, unproven: bool) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if unproven {
            self.unproven = self.unproven.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_endpoint_starts_with_one_request_and_grows_as_it_answers() {
        let mut allowance = Allowance::default();
        assert_eq!(allowance.limit(8), 1);
        assert_eq!(allowance.standing(), Standing::Unknown);
        let limits: Vec<usize> = (0..5)
            .map(|_| {
                allowance.finished(true, 8);
                allowance.limit(8)
            })
            .collect();
        assert_eq!(limits, [2, 4, 8, 8, 8]);
        assert_eq!(allowance.standing(), Standing::Answering);
    }

    #[test]
    fn silence_drops_an_endpoint_to_one_probe_until_it_answers() {
        let mut allowance = Allowance::default();
        for _ in 0..4 {
            allowance.finished(true, 8);
        }
        allowance.finished(false, 8);
        assert_eq!(
            (allowance.standing(), allowance.limit(8)),
            (Standing::Silent, 1)
        );
        allowance.finished(false, 8);
        assert_eq!(allowance.limit(8), 1);
        allowance.finished(true, 8);
        assert_eq!(
            (allowance.standing(), allowance.limit(8)),
            (Standing::Answering, 2)
        );
    }

    #[test]
    fn the_limit_follows_a_lowered_concurrency() {
        let mut allowance = Allowance::default();
        for _ in 0..4 {
            allowance.finished(true, 8);
        }
        assert_eq!(allowance.limit(3), 3);
        assert_eq!(allowance.limit(0), 1);
    }

    #[test]
    fn endpoints_not_known_to_answer_never_take_the_reserved_share() {
        let mut budget = Budget::new(8);
        // Eight dead endpoints, one probe each: only six start.
        let mut started = 0;
        for _ in 0..8 {
            if budget.admit(Standing::Silent) == Admit::Yes {
                budget.start(true);
                started += 1;
            }
        }
        assert_eq!(started, 6);
        assert_eq!(budget.admit(Standing::Unknown), Admit::UnprovenFull);
        // Answering endpoints still find the reserved slots.
        assert_eq!(budget.admit(Standing::Answering), Admit::Yes);
        budget.start(false);
        budget.start(false);
        assert_eq!(budget.admit(Standing::Answering), Admit::NodeFull);
        assert!(!budget.has_room());
        // A probe that ends frees a slot of the unreserved share.
        assert_eq!(budget.unproven_room(), 0);
        budget.finish(true);
        assert_eq!(budget.unproven_room(), 1);
        assert_eq!(budget.admit(Standing::Silent), Admit::Yes);
        assert_eq!(budget.in_flight(), 7);
    }

    #[test]
    fn answering_endpoints_may_use_the_whole_budget() {
        let mut budget = Budget::new(4);
        for _ in 0..4 {
            assert_eq!(budget.admit(Standing::Answering), Admit::Yes);
            budget.start(false);
        }
        assert_eq!(budget.admit(Standing::Answering), Admit::NodeFull);
    }

    #[test]
    fn a_budget_of_one_reserves_nothing() {
        let mut budget = Budget::new(1);
        assert_eq!(budget.admit(Standing::Unknown), Admit::Yes);
        budget.start(true);
        assert_eq!(budget.admit(Standing::Answering), Admit::NodeFull);
    }
}
