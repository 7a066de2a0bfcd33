//! Append-only ledgers: quantities that several desks change at once (stock, loyalty points,
//! cash in the drawer) are kept as movements, never as a number one desk overwrites. Replicas
//! merge by union of movements (keyed by the id the desk made), and the balance is always
//! derived from them, so two desks selling the last two units offline both count.

use std::collections::BTreeMap;

use uuid::Uuid;

/// One movement: `delta` units (negative for a sale or a pay-out) on `account`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Movement {
    pub id: Uuid,
    /// What the balance is of: a product's stock at a branch, a customer's points, a drawer.
    pub account: Uuid,
    pub delta: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ledger {
    movements: BTreeMap<Uuid, Movement>,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Records a movement; a movement already present (a replay) changes nothing. Returns
    /// whether it was new.
    pub fn record(&mut self, movement: Movement) -> bool {
        if self.movements.contains_key(&movement.id) {
            return false;
        }
        self.movements.insert(movement.id, movement);
        true
    }

    /// Union with another replica; returns how many movements were new here.
    pub fn merge(&mut self, other: &Ledger) -> usize {
        other
            .movements
            .values()
            .filter(|movement| self.record(**movement))
            .count()
    }

    /// The balance of `account`: the sum of its movements, saturating rather than wrapping.
    pub fn balance(&self, account: Uuid) -> i64 {
        self.movements
            .values()
            .filter(|movement| movement.account == account)
            .fold(0i64, |sum, movement| sum.saturating_add(movement.delta))
    }

    pub fn len(&self) -> usize {
        self.movements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.movements.is_empty()
    }

    pub fn movements(&self) -> impl Iterator<Item = &Movement> {
        self.movements.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRng;

    fn movement(id: u128, account: u128, delta: i64) -> Movement {
        Movement {
            id: Uuid::from_u128(id),
            account: Uuid::from_u128(account),
            delta,
        }
    }

    #[test]
    fn two_desks_selling_offline_both_count() {
        let stock = 7;
        let mut desk_a = Ledger::new();
        desk_a.record(movement(1, stock, 2));
        let mut desk_b = desk_a.clone();
        desk_a.record(movement(2, stock, -1));
        desk_b.record(movement(3, stock, -1));
        desk_a.merge(&desk_b);
        desk_b.merge(&desk_a);
        assert_eq!(desk_a, desk_b);
        assert_eq!(desk_a.balance(Uuid::from_u128(stock)), 0);
        assert_eq!(desk_a.merge(&desk_b), 0, "a second merge adds nothing");
    }

    fn random_ledger(rng: &mut SeededRng) -> Ledger {
        let mut ledger = Ledger::new();
        for _ in 0..rng.below(8) {
            // Ids from a small range so replicas share movements; a movement's content is a
            // function of its id, as it is in reality (one desk made it once).
            let id = u128::from(rng.below(20));
            let account = id % 3;
            ledger.record(movement(id, account, i64::try_from(id).unwrap() - 10));
        }
        ledger
    }

    #[test]
    fn union_is_idempotent_commutative_and_associative() {
        for seed in 0..1000 {
            let mut rng = SeededRng::new(seed);
            let (a, b, c) = (
                random_ledger(&mut rng),
                random_ledger(&mut rng),
                random_ledger(&mut rng),
            );
            let merged = |x: &Ledger, y: &Ledger| {
                let mut out = x.clone();
                out.merge(y);
                out
            };
            assert_eq!(merged(&a, &a), a, "seed {seed}");
            assert_eq!(merged(&a, &b), merged(&b, &a), "seed {seed}");
            assert_eq!(
                merged(&merged(&a, &b), &c),
                merged(&a, &merged(&b, &c)),
                "seed {seed}"
            );
            for account in 0..3 {
                let account = Uuid::from_u128(account);
                let both = merged(&a, &b);
                let expected: i64 = both
                    .movements()
                    .filter(|m| m.account == account)
                    .map(|m| m.delta)
                    .sum();
                assert_eq!(both.balance(account), expected, "seed {seed}");
            }
        }
    }
}
