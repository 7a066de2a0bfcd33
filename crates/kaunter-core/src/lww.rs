//! Per-field last-writer-wins records: how two desks' edits of one record combine.
//!
//! A record is a map from field name to a register (value + [`Stamp`]). A write sets some fields
//! with one stamp; merging keeps, field by field, the value with the greater stamp. So two desks
//! editing different fields of one patient both keep their edit, and the latest edit of one field
//! wins wherever and in whatever order the edits arrive. Merge is idempotent, commutative and
//! associative (property-tested below), which is what lets desks and the server apply changes in
//! any order, any number of times, and still agree.
//!
//! Deletion is a field like the others ([`DELETED`]): a tombstone set to true with its stamp. An
//! edit made before the delete loses to it; the row stays deleted, its other fields still merge,
//! so a late edit never brings a deleted row back.
//!
//! Stamps must be unique per write (see [`Stamp`]): two different values with one stamp would
//! make the outcome depend on arrival order.

use std::collections::BTreeMap;

use crate::hlc::Stamp;

/// The field that marks a record deleted (a tombstone) when its value is true.
pub const DELETED: &str = "deleted";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register<V> {
    pub value: V,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LwwRecord<V> {
    fields: BTreeMap<String, Register<V>>,
}

impl<V> Default for LwwRecord<V> {
    fn default() -> Self {
        LwwRecord {
            fields: BTreeMap::new(),
        }
    }
}

impl<V: Clone> LwwRecord<V> {
    pub fn new() -> LwwRecord<V> {
        LwwRecord::default()
    }

    /// Offers `value` for `field` as written at `stamp`; true when it won (it is now the value).
    pub fn offer(&mut self, field: &str, value: V, stamp: Stamp) -> bool {
        match self.fields.get_mut(field) {
            Some(current) if current.stamp >= stamp => false,
            Some(current) => {
                *current = Register { value, stamp };
                true
            }
            None => {
                self.fields
                    .insert(field.to_owned(), Register { value, stamp });
                true
            }
        }
    }

    /// Merges `other` into this record; true when anything changed.
    pub fn merge(&mut self, other: &LwwRecord<V>) -> bool {
        let mut changed = false;
        for (field, register) in &other.fields {
            changed |= self.offer(field, register.value.clone(), register.stamp);
        }
        changed
    }

    pub fn get(&self, field: &str) -> Option<&V> {
        self.fields.get(field).map(|register| &register.value)
    }

    pub fn stamp(&self, field: &str) -> Option<Stamp> {
        self.fields.get(field).map(|register| register.stamp)
    }

    pub fn registers(&self) -> impl Iterator<Item = (&str, &Register<V>)> {
        self.fields
            .iter()
            .map(|(field, register)| (field.as_str(), register))
    }

    /// The stamp of the latest write to any field.
    pub fn latest_stamp(&self) -> Option<Stamp> {
        self.fields.values().map(|register| register.stamp).max()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::hlc::Hlc;
    use crate::ids::DeviceId;
    use crate::rng::SeededRng;

    const FIELDS: [&str; 4] = ["full_name", "phone", "sex", DELETED];

    fn stamp(millis: u64, device: u128) -> Stamp {
        Stamp::new(
            Hlc::new(millis, 0).unwrap(),
            DeviceId::from_uuid(Uuid::from_u128(device)),
        )
    }

    #[test]
    fn the_later_write_of_a_field_wins_and_other_fields_are_kept() {
        let mut desk_a = LwwRecord::new();
        desk_a.offer("full_name", "Siti", stamp(10, 1));
        desk_a.offer("phone", "+60123456789", stamp(10, 1));
        let mut desk_b = desk_a.clone();
        // A fixes the name, B the phone, concurrently.
        desk_a.offer("full_name", "Siti Nurhaliza", stamp(20, 1));
        desk_b.offer("phone", "+60198765432", stamp(15, 2));

        let mut merged_ab = desk_a.clone();
        merged_ab.merge(&desk_b);
        let mut merged_ba = desk_b.clone();
        merged_ba.merge(&desk_a);
        assert_eq!(merged_ab, merged_ba);
        assert_eq!(merged_ab.get("full_name"), Some(&"Siti Nurhaliza"));
        assert_eq!(merged_ab.get("phone"), Some(&"+60198765432"));
        assert_eq!(merged_ab.latest_stamp(), Some(stamp(20, 1)));
    }

    #[test]
    fn an_older_write_loses_and_reports_it() {
        let mut record = LwwRecord::new();
        assert!(record.offer("sex", "female", stamp(20, 1)));
        assert!(!record.offer("sex", "male", stamp(19, 9)));
        assert!(
            !record.offer("sex", "male", stamp(20, 1)),
            "a replay changes nothing"
        );
        assert!(
            record.offer("sex", "male", stamp(20, 2)),
            "same time: the device id decides"
        );
        assert_eq!(record.get("sex"), Some(&"male"));
    }

    #[test]
    fn an_edit_older_than_the_delete_does_not_bring_the_row_back() {
        let mut record = LwwRecord::new();
        record.offer("full_name", "Ahmad".to_owned(), stamp(10, 1));
        record.offer(DELETED, "true".to_owned(), stamp(30, 2));
        record.offer("full_name", "Ahmad bin Abu".to_owned(), stamp(20, 1));
        record.offer(DELETED, "false".to_owned(), stamp(25, 1));
        assert_eq!(record.get(DELETED).map(String::as_str), Some("true"));
    }

    /// A random record whose writes all carry unique stamps drawn from `stamps`.
    fn random_record(rng: &mut SeededRng, stamps: &mut Vec<Stamp>) -> LwwRecord<u64> {
        let mut record = LwwRecord::new();
        for _ in 0..rng.below(6) {
            let field = FIELDS[rng.index(FIELDS.len())];
            // Unique per write: a fresh (time, device) pair, as real devices make.
            let s = stamp(rng.below(50), u128::from(rng.below(4)) + 1);
            if stamps.contains(&s) {
                continue;
            }
            stamps.push(s);
            record.offer(field, rng.next_u64(), s);
        }
        record
    }

    fn merged(a: &LwwRecord<u64>, b: &LwwRecord<u64>) -> LwwRecord<u64> {
        let mut out = a.clone();
        out.merge(b);
        out
    }

    #[test]
    fn merge_is_idempotent_commutative_and_associative() {
        for seed in 0..2000 {
            let mut rng = SeededRng::new(seed);
            let mut stamps = Vec::new();
            let a = random_record(&mut rng, &mut stamps);
            let b = random_record(&mut rng, &mut stamps);
            let c = random_record(&mut rng, &mut stamps);
            assert_eq!(merged(&a, &a), a, "idempotent, seed {seed}");
            assert_eq!(merged(&a, &b), merged(&b, &a), "commutative, seed {seed}");
            assert_eq!(
                merged(&merged(&a, &b), &c),
                merged(&a, &merged(&b, &c)),
                "associative, seed {seed}"
            );
        }
    }

    #[test]
    fn applying_writes_in_any_order_gives_the_same_record() {
        for seed in 0..500 {
            let mut rng = SeededRng::new(seed);
            let mut writes = Vec::new();
            for n in 0..rng.below(12) {
                let field = FIELDS[rng.index(FIELDS.len())];
                writes.push((
                    field,
                    rng.next_u64(),
                    stamp(rng.below(20), u128::from(n) + 1),
                ));
            }
            let mut in_order = LwwRecord::new();
            for (field, value, s) in &writes {
                in_order.offer(field, *value, *s);
            }
            // Shuffle (Fisher-Yates) and apply twice over, as duplicated deliveries would.
            let mut shuffled = writes.clone();
            for i in (1..shuffled.len()).rev() {
                let j = rng.index(i + 1);
                shuffled.swap(i, j);
            }
            let mut out_of_order = LwwRecord::new();
            for (field, value, s) in shuffled.iter().chain(shuffled.iter()) {
                out_of_order.offer(field, *value, *s);
            }
            assert_eq!(in_order, out_of_order, "seed {seed}");
        }
    }
}
